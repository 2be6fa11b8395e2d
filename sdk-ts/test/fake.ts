// A `fetch` that answers JSON-RPC in-process, for what a real server will not
// do on demand (drop an answer, ask to slow down, ...).

export interface WireCall {
  jsonrpc: "2.0";
  method: string;
  params?: unknown;
  id: number;
}

/** `answer` returns the response object for a call, or `undefined` to leave it out. */
export function fakeFetch(answer: (call: WireCall, attempt: number) => object | undefined) {
  const requests: { body: unknown; headers: Record<string, string> }[] = [];
  const attempts = new Map<string, number>();
  const fetch = async (_url: string, init: RequestInit): Promise<Response> => {
    const body = JSON.parse(String(init.body)) as WireCall | WireCall[];
    requests.push({ body, headers: { ...(init.headers as Record<string, string>) } });
    const calls = Array.isArray(body) ? body : [body];
    const answers = calls.flatMap((call) => {
      const n = attempts.get(call.method) ?? 0;
      attempts.set(call.method, n + 1);
      const a = answer(call, n);
      return a === undefined ? [] : [{ jsonrpc: "2.0", id: call.id, ...a }];
    });
    const payload = Array.isArray(body) ? answers : answers[0];
    return new Response(JSON.stringify(payload), { status: 200, headers: { "content-type": "application/json" } });
  };
  return { fetch, requests };
}

export const url = "http://fake.invalid/rpc";
