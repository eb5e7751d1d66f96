//! `GET /oncall/feed/PERSON/TOKEN.ics`: a person's on-duty calendar for their calendar app,
//! behind a secret URL (`oncall::feed`). Every refusal is the same 404, so the URL space says
//! nothing about who exists; the path (with its token) is never logged.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::AppState;
use crate::domain::settings::AlarmConfigStore;
use crate::oncall::feed::{FeedKey, person_calendar};
use crate::oncall::file;
use crate::oncall::model::PersonId;

/// What the feed needs: the key of its URLs and where the on-duty file is kept.
pub struct Feed {
    pub key: FeedKey,
    pub store: Arc<dyn AlarmConfigStore>,
}

pub(super) async fn feed(
    State(state): State<AppState>,
    Path((person, file_name)): Path<(String, String)>,
) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, "not found").into_response();
    let Some(feed) = &state.feed else {
        return not_found();
    };
    let (Ok(person), Some(token)) = (PersonId::parse(&person), file_name.strip_suffix(".ics"))
    else {
        return not_found();
    };
    if !feed.key.verifies(&person, token) {
        return not_found();
    }
    let on_call = match feed.store.on_call().await {
        Ok(Some(text)) => file::import(&text).map_err(|e| e.to_string()),
        Ok(None) => return not_found(),
        Err(e) => Err(crate::errors::Chain(&e).to_string()),
    };
    let on_call = match on_call {
        Ok(o) => o,
        Err(why) => {
            tracing::warn!(error = %why, "a calendar feed could not read the on-duty file");
            return (StatusCode::SERVICE_UNAVAILABLE, "try again later").into_response();
        }
    };
    match person_calendar(&on_call, &person, Utc::now()) {
        Some(ics) => (
            [
                (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
                // Calendar apps poll; the URL is a secret, so no shared cache keeps it.
                (header::CACHE_CONTROL, "private, max-age=300"),
            ],
            ics,
        )
            .into_response(),
        None => not_found(),
    }
}
