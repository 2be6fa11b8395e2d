//! Cursors of paged lists: the id of the last item of the previous page
//! (ids are UUID v7, so they sort by creation).

use trellis_schema::ApiError;
use trellis_schema::error::FieldError;
use trellis_schema::list::Page;
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

/// A page from rows fetched with a limit of `limit + 1`: the extra row only
/// says there is more, and the last kept row's id is the next cursor.
pub(crate) fn page<R, T>(mut rows: Vec<R>, limit: usize, id: impl Fn(&R) -> &str, item: impl FnMut(R) -> T) -> Page<T> {
    let next_cursor = (rows.len() > limit).then(|| {
        rows.truncate(limit);
        rows.last().map(|r| id(r).to_owned()).unwrap_or_default()
    });
    Page { items: rows.into_iter().map(item).collect(), next_cursor }
}
