//! Cursors of paged lists: the id of the last item of the previous page
//! (ids are UUID v7, so they sort by creation).

use std::str::FromStr;
use trellis_schema::ApiError;
use trellis_schema::error::FieldError;
use trellis_schema::list::Page;
use trellis_schema::values::Cursor;

use uuid::Uuid;

use super::error::HandlerError;

/// The id a cursor continues from; a cursor this server did not make is a
/// VALIDATION error on `cursor`.
pub(crate) fn after_id<I: FromStr, R>(cursor: Option<&Cursor>) -> Result<Option<I>, HandlerError<R>> {
    match cursor {
        None => Ok(None),
        Some(c) => match c.as_str().parse::<I>() {
            Ok(id) => Ok(Some(id)),
            Err(_) => Err(HandlerError::Common(ApiError::validation(vec![FieldError {
                path: "cursor".into(),
                message: "is not a cursor of this list".into(),
            }]))),
        },
    }
}

/// A page from rows fetched with a limit of `limit + 1`: the extra row only
/// says there is more, and the last kept row's id is the next cursor.
pub(crate) fn page<R, I: Into<Uuid>, T>(
    mut rows: Vec<R>,
    limit: usize,
    id: impl Fn(&R) -> I,
    item: impl FnMut(R) -> T,
) -> Page<T> {
    let next_cursor = (rows.len() > limit).then(|| {
        rows.truncate(limit);
        rows.last()
            .map(|r| {
                let id: Uuid = id(r).into();
                id.hyphenated().to_string()
            })
            .unwrap_or_default()
    });
    Page { items: rows.into_iter().map(item).collect(), next_cursor }
}
