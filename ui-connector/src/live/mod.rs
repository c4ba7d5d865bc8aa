//! Socket.IO (placeholder).
