//! `POST /register` and `POST /register-app` (placeholder).

use std::sync::Arc;

use axum::Router;

use crate::app::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
}
