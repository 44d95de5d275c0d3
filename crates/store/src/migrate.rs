//! Versioned migrations, embedded in the binary and applied in order, each
//! in its own transaction, recorded in `twostep_migrations`.
//!
//! Written by hand rather than with sqlx's migrator because the queries run
//! through the `Any` driver while the DDL differs per engine. On PostgreSQL
//! an advisory lock makes instances starting together migrate one at a time.

use sqlx::{Acquire, Row};

use crate::{Backend, ConnectError, SqlStore};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sqlite: include_str!("../migrations/sqlite/0001_init.sql"),
        postgres: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "abuse",
        sqlite: include_str!("../migrations/sqlite/0002_abuse.sql"),
        postgres: include_str!("../migrations/postgres/0002_abuse.sql"),
    },
    Migration {
        version: 3,
        name: "delivery",
        sqlite: include_str!("../migrations/sqlite/0003_delivery.sql"),
        postgres: include_str!("../migrations/postgres/0003_delivery.sql"),
    },
    Migration {
        version: 4,
        name: "orgs",
        sqlite: include_str!("../migrations/sqlite/0004_orgs.sql"),
        postgres: include_str!("../migrations/postgres/0004_orgs.sql"),
    },
    Migration {
        version: 5,
        name: "allowlist",
        sqlite: include_str!("../migrations/sqlite/0005_allowlist.sql"),
        postgres: include_str!("../migrations/postgres/0005_allowlist.sql"),
    },
    Migration {
        version: 6,
        name: "admin",
        sqlite: include_str!("../migrations/sqlite/0006_admin.sql"),
        postgres: include_str!("../migrations/postgres/0006_admin.sql"),
    },
    Migration {
        version: 7,
        name: "push",
        sqlite: include_str!("../migrations/sqlite/0007_push.sql"),
        postgres: include_str!("../migrations/postgres/0007_push.sql"),
    },
    Migration {
        version: 8,
        name: "invitations",
        sqlite: include_str!("../migrations/sqlite/0008_invitations.sql"),
        postgres: include_str!("../migrations/postgres/0008_invitations.sql"),
    },
    Migration {
        version: 10,
        name: "limits",
        sqlite: include_str!("../migrations/sqlite/0010_limits.sql"),
        postgres: include_str!("../migrations/postgres/0010_limits.sql"),
    },
    Migration {
        version: 11,
        name: "keys",
        sqlite: include_str!("../migrations/sqlite/0011_keys.sql"),
        postgres: include_str!("../migrations/postgres/0011_keys.sql"),
    },
    Migration {
        version: 12,
        name: "preferences",
        sqlite: include_str!("../migrations/sqlite/0012_preferences.sql"),
        postgres: include_str!("../migrations/postgres/0012_preferences.sql"),
    },
    Migration {
        version: 13,
        name: "oidc",
        sqlite: include_str!("../migrations/sqlite/0013_oidc.sql"),
        postgres: include_str!("../migrations/postgres/0013_oidc.sql"),
    },
    Migration {
        version: 15,
        name: "oidc_sessions",
        sqlite: include_str!("../migrations/sqlite/0015_oidc_sessions.sql"),
        postgres: include_str!("../migrations/postgres/0015_oidc_sessions.sql"),
    },
    Migration {
        version: 16,
        name: "webauthn",
        sqlite: include_str!("../migrations/sqlite/0016_webauthn.sql"),
        postgres: include_str!("../migrations/postgres/0016_webauthn.sql"),
    },
    Migration {
        version: 17,
        name: "webauthn_settings",
        sqlite: include_str!("../migrations/sqlite/0017_webauthn_settings.sql"),
        postgres: include_str!("../migrations/postgres/0017_webauthn_settings.sql"),
    },
    Migration {
        version: 18,
        name: "summary_indexes",
        sqlite: include_str!("../migrations/sqlite/0018_summary_indexes.sql"),
        postgres: include_str!("../migrations/postgres/0018_summary_indexes.sql"),
    },
];

const LOCK_KEY: i64 = 0x0074_776f_7374_6570; // "twostep"

#[derive(Debug, Default)]
pub struct MigrationReport {
    pub applied: Vec<String>,
    pub current: i64,
}

impl SqlStore {
    /// Whether twostep's tables exist here (a migration has run).
    pub async fn is_initialised(&self) -> bool {
        sqlx::query("SELECT COUNT(*) FROM twostep_migrations").fetch_one(&self.pool).await.is_ok()
    }

    pub async fn migrate(&self) -> Result<MigrationReport, ConnectError> {
        let err = |e: sqlx::Error| ConnectError::Migrate(e.to_string());
        let mut conn = self.pool.acquire().await.map_err(err)?;
        if self.backend == Backend::Postgres {
            // One lock per schema: installs sharing a database in their own
            // schemas (as the test suite does) need not wait for each other.
            sqlx::query("SELECT pg_advisory_lock(hashtextextended(current_schema(), $1))")
                .bind(LOCK_KEY)
                .execute(&mut *conn)
                .await
                .map_err(err)?;
        }
        let result = async {
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS twostep_migrations (
                    version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
            )
            .execute(&mut *conn)
            .await
            .map_err(err)?;
            let done: Vec<i64> = sqlx::query("SELECT version FROM twostep_migrations")
                .fetch_all(&mut *conn)
                .await
                .map_err(err)?
                .iter()
                .map(|r| r.try_get::<i64, _>(0))
                .collect::<Result<_, _>>()
                .map_err(err)?;
            let mut report = MigrationReport::default();
            for m in MIGRATIONS {
                if done.contains(&m.version) {
                    continue;
                }
                let sql = match self.backend {
                    Backend::Sqlite => m.sqlite,
                    Backend::Postgres => m.postgres,
                };
                let mut tx = conn.begin().await.map_err(err)?;
                sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(err)?;
                sqlx::query("INSERT INTO twostep_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
                    .bind(m.version)
                    .bind(m.name)
                    .bind(unix_now())
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
                tx.commit().await.map_err(err)?;
                report.applied.push(format!("{:04}_{}", m.version, m.name));
            }
            report.current = MIGRATIONS.last().map_or(0, |m| m.version);
            Ok(report)
        }
        .await;
        if self.backend == Backend::Postgres {
            let _ = sqlx::query("SELECT pg_advisory_unlock(hashtextextended(current_schema(), $1))")
                .bind(LOCK_KEY)
                .execute(&mut *conn)
                .await;
        }
        result
    }
}

/// Only for the `applied_at` bookkeeping column, which no rule reads.
#[expect(clippy::disallowed_methods, reason = "bookkeeping timestamp outside the domain's rules")]
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The schema version this build migrates to.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

impl SqlStore {
    /// Whether every migration this build knows is recorded as applied: a
    /// server on an older schema must not be called ready.
    pub async fn schema_is_current(&self) -> Result<bool, sqlx::Error> {
        let done: Vec<i64> = sqlx::query("SELECT version FROM twostep_migrations")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.try_get::<i64, _>(0))
            .collect::<Result<_, _>>()?;
        Ok(MIGRATIONS.iter().all(|m| done.contains(&m.version)))
    }
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    /// The list above is written by hand: a migration file left out of it
    /// would never run (0015 once was), so every file must be listed under
    /// its number, in both engines' folders alike.
    #[test]
    fn every_migration_file_is_listed_in_both_engines() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let files = |engine: &str| -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(dir.join(engine))
                .expect("migrations folder")
                .map(|e| e.expect("entry").path())
                .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("sql")))
                .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        let listed: Vec<String> = MIGRATIONS.iter().map(|m| format!("{:04}_{}.sql", m.version, m.name)).collect();
        assert_eq!(files("sqlite"), listed);
        assert_eq!(files("postgres"), listed);
        assert!(MIGRATIONS.windows(2).all(|w| w[0].version < w[1].version), "versions ascend");
    }
}
