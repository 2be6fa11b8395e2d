use chrono::Utc;
use trellis_schema::error::NoReason;
use trellis_schema::trade_parse::{Parse, ParseParams, ParseResult, parse};

use crate::access::UserCtx;
use crate::rpc::error::HandlerError;
use crate::rpc::registry::Handler;

impl Handler for Parse {
    /// Reads the text against the current time (for "until Friday"); no
    /// side effects.
    async fn handle(_: UserCtx, p: ParseParams) -> Result<ParseResult, HandlerError<NoReason>> {
        Ok(parse(p.text.as_str(), Utc::now()))
    }
}
