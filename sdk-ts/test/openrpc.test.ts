// The OpenRPC document (the committed file and the live rpc.discover) is
// valid against the OpenRPC meta-schema and lists every procedure the SDK knows.

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";

import * as jsonSchemaMeta from "@json-schema-tools/meta-schema";
import * as metaSchema from "@open-rpc/meta-schema";
import AjvModule from "ajv";
import addFormatsModule from "ajv-formats";

import { createClient, procedures } from "../dist/index.js";
import { startServer, type RunningServer } from "./server.js";

// The packages' types describe documents only; their values are these exports.
const { openrpcDocument } = metaSchema as unknown as { openrpcDocument: Record<string, unknown> };
const { jsonSchema } = jsonSchemaMeta as unknown as { jsonSchema: Record<string, unknown> };
// ajv and ajv-formats are CommonJS; their class and plugin are `default`.
const Ajv = AjvModule.default;
const addFormats = addFormatsModule.default;

function validator() {
  // Both schemas name a `$schema` Ajv does not ship; their bodies are draft-07.
  // The OpenRPC one refers to the JSON Schema one by its `$id`, with and
  // without the trailing slash, so it is registered under both.
  const draft7 = ({ $schema: _ignored, ...schema }: Record<string, unknown>) => schema;
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  // The meta-schema gives server urls `format: uri` (absolute), while the
  // OpenRPC specification says a server url "MAY be relative" (`/rpc` is).
  // Checked as a URI reference, so relative urls pass and malformed ones fail.
  ajv.addFormat("uri", ajv.formats["uri-reference"]!);
  ajv.addSchema(draft7(jsonSchema));
  const { $id: _id, ...anonymous } = draft7(jsonSchema);
  ajv.addSchema(anonymous, "https://meta.json-schema.tools");
  return ajv.compile(draft7(openrpcDocument));
}

function check(doc: unknown): void {
  const validate = validator();
  assert.ok(validate(doc), JSON.stringify(validate.errors, null, 2));
  const names = (doc as { methods: { name: string }[] }).methods.map((m) => m.name);
  for (const method of Object.keys(procedures)) assert.ok(names.includes(method), `${method} is listed`);
}

const file = fileURLToPath(new URL("../../schema/openrpc.json", import.meta.url));

describe("OpenRPC", () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server?.stop());

  it("schema/openrpc.json is valid and complete", { skip: existsSync(file) ? false : `${file} does not exist yet` }, () => {
    check(JSON.parse(readFileSync(file, "utf8")));
  });

  it("rpc.discover is valid and complete", async () => {
    check(await createClient({ url: server.url }).rpc.discover());
  });
});
