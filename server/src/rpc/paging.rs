//! Cursors of paged lists: the id of the last item of the previous page
//! (ids are UUID v7, so they sort by creation).

use trellis_schema::ApiError;
use trellis_schema::error::FieldError;
use trellis_schema::values::Cursor;
use uuid::Uuid;

use super::error::HandlerError;

/// The id a cursor continues from; a cursor this server did not make is a
/// VALIDATION error on `cursor`.
pub(crate) fn after_id<R>(cursor: Option<&Cursor>) -> Result<Option<String>, HandlerError<R>> {
    match cursor {
        None => Ok(None),
        Some(c) => match Uuid::parse_str(c.as_str()) {
            Ok(id) => Ok(Some(id.to_string())),
            Err(_) => Err(HandlerError::Common(ApiError::validation(vec![FieldError {
                path: "cursor".into(),
                message: "is not a cursor of this list".into(),
            }]))),
        },
    }
}
