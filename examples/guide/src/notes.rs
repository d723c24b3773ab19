//! A session per request, committed or rolled back after the handler and always closed:
//! FastAPI's dependency with `yield`.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use roundtrip::depends::{Cleanup, Dependency, Depends};
use roundtrip::{HttpError, Json, Lifespan, Path, Router, get, post};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Guide;

/// Writes made during one request, applied to the store only if it succeeds.
#[derive(Clone)]
pub(crate) struct Session {
    guide: Arc<Guide>,
    pending: Arc<Mutex<HashMap<i64, String>>>,
}

impl Session {
    fn stage(&self, id: i64, text: &str) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(id, text.to_owned());
        }
    }

    fn staged(&self) -> usize {
        self.pending.lock().map(|p| p.len()).unwrap_or(0)
    }

    fn committed(&self, id: i64) -> Option<String> {
        self.guide.store.notes.lock().ok()?.get(&id).cloned()
    }

    fn committed_count(&self) -> usize {
        self.guide.store.notes.lock().map(|n| n.len()).unwrap_or(0)
    }
}

impl Dependency for Session {
    type Inputs = (Lifespan<Guide>, Cleanup);
    type Rejection = Infallible;

    async fn resolve((Lifespan(guide), cleanup): Self::Inputs) -> Result<Self, Infallible> {
        guide.store.opened.fetch_add(1, Ordering::SeqCst);
        let session = Session {
            guide,
            pending: Arc::default(),
        };
        let closing = session.clone();
        // The code after FastAPI's `yield`: commit, or roll back on any error; close.
        cleanup.defer(move |outcome| async move {
            let store = &closing.guide.store;
            let pending = closing
                .pending
                .lock()
                .map(|mut p| std::mem::take(&mut *p))
                .unwrap_or_default();
            if outcome.succeeded() {
                if let Ok(mut notes) = store.notes.lock() {
                    notes.extend(pending);
                }
                store.committed.fetch_add(1, Ordering::SeqCst);
            } else {
                store.rolled_back.fetch_add(1, Ordering::SeqCst);
            }
            store.closed.fetch_add(1, Ordering::SeqCst);
        });
        Ok(session)
    }

    fn share(&self) -> Option<Self> {
        Some(self.clone())
    }
}

#[derive(Deserialize, JsonSchema)]
pub(crate) struct NoteIn {
    #[schemars(length(min = 1, max = 200))]
    text: String,
}

#[derive(Serialize, Deserialize, JsonSchema)]
pub(crate) struct Note {
    id: i64,
    text: String,
}

async fn create_note(Depends(session): Depends<Session>, Json(note): Json<NoteIn>) -> Json<Note> {
    let id = (session.committed_count() + session.staged() + 1) as i64;
    session.stage(id, &note.text);
    Json(Note {
        id,
        text: note.text,
    })
}

/// Writes into the session, then fails: the session must roll back.
#[roundtrip::handler]
async fn create_then_fail(
    Depends(session): Depends<Session>,
    Json(note): Json<NoteIn>,
) -> Result<Json<Note>, HttpError> {
    session.stage(999, &note.text);
    Err(HttpError::conflict("Conflicting note"))
}

async fn read_note(
    Path(note_id): Path<i64>,
    Depends(session): Depends<Session>,
) -> Result<Json<Note>, HttpError> {
    match session.committed(note_id) {
        Some(text) => Ok(Json(Note { id: note_id, text })),
        None => Err(HttpError::not_found("Note not found")),
    }
}

/// Sessions opened, closed, committed and rolled back so far.
pub(crate) async fn session_stats(Lifespan(guide): Lifespan<Guide>) -> Json<BTreeMap<String, i64>> {
    let store = &guide.store;
    Json(BTreeMap::from([
        ("opened".to_owned(), store.opened.load(Ordering::SeqCst)),
        ("closed".to_owned(), store.closed.load(Ordering::SeqCst)),
        (
            "committed".to_owned(),
            store.committed.load(Ordering::SeqCst),
        ),
        (
            "rolled_back".to_owned(),
            store.rolled_back.load(Ordering::SeqCst),
        ),
    ]))
}

/// FastAPI's `APIRouter(prefix="/notes", tags=["notes"])`.
pub(crate) fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .prefix("/notes")
        .tag("notes")
        .route("/", post(create_note).status(201))
        .route(
            "/conflict",
            post(create_then_fail).response_status(409, "Conflicting note"),
        )
        .route(
            "/{note_id}",
            get(read_note).response_status(404, "Note not found"),
        )
}
