//! An in-process test client: requests go straight into the app, no socket.
