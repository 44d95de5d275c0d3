//! A fresh PostgreSQL schema for one test, dropped when the test ends: what
//! `TestApp` runs on, and what a test hands to `twostep serve` processes
//! (`TWOSTEP_DATABASE_URL`) so several of them share one database.

use crate::app::postgres_url;

pub struct PgSchema {
    /// The server's URL: the test database with this schema first on the
    /// search path.
    pub url: String,
    name: String,
}

impl PgSchema {
    pub async fn create() -> Self {
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let admin = postgres_url();
        sqlx::any::install_default_drivers();
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is required for the store tests: {e}"));
        sqlx::query(&format!("CREATE SCHEMA {name}")).execute(&mut conn).await.expect("create schema");
        let sep = if admin.contains('?') { '&' } else { '?' };
        Self { url: format!("{admin}{sep}options=-c%20search_path%3D{name}"), name }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (url, name) = (postgres_url(), self.name.clone());
        // Drop is synchronous; tidy the schema up on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                if let Ok(mut c) = <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA {name} CASCADE")).execute(&mut c).await;
                }
            });
        })
        .join();
    }
}
