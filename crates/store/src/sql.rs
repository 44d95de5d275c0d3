//! One statement, two executors. A hot-path statement is written once as a
//! `Stmt` (portable SQL and its arguments) and a row decoder over `Cols`;
//! `SqlStore` runs it on the calling thread through `direct` on SQLite and
//! through sqlx's pool on PostgreSQL (or where no direct connection is open).

use std::borrow::Cow;

use rusqlite::types::{ToSqlOutput, ValueRef};
use sqlx::Row;
use sqlx::any::{AnyArguments, AnyRow};
use twostep_domain::error::StoreError;

use crate::store_err;

/// An argument of a statement.
#[derive(Clone, Debug)]
pub(crate) enum Arg<'a> {
    Int(i64),
    OptInt(Option<i64>),
    Text(Cow<'a, str>),
    OptText(Option<&'a str>),
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::OptInt(v)
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(Cow::Borrowed(v))
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(Cow::Borrowed(v))
    }
}

impl From<String> for Arg<'_> {
    fn from(v: String) -> Self {
        Arg::Text(Cow::Owned(v))
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::OptText(v)
    }
}

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Arg::Int(v) | Arg::OptInt(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Arg::Text(Cow::Borrowed(v)) | Arg::OptText(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Arg::Text(Cow::Owned(v)) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Arg::OptInt(None) | Arg::OptText(None) => ToSqlOutput::Borrowed(ValueRef::Null),
        })
    }
}

/// A statement with its arguments, in `$n` form.
#[derive(Clone, Debug)]
pub(crate) struct Stmt<'a> {
    pub sql: Cow<'static, str>,
    pub args: Vec<Arg<'a>>,
}

impl<'a> Stmt<'a> {
    pub fn new(sql: impl Into<Cow<'static, str>>) -> Self {
        Self { sql: sql.into(), args: Vec::new() }
    }

    /// The next argument (`$1`, then `$2`, …).
    pub fn arg(mut self, v: impl Into<Arg<'a>>) -> Self {
        self.args.push(v.into());
        self
    }

    /// The statement bound for sqlx.
    pub fn sqlx(&self) -> sqlx::query::Query<'_, sqlx::Any, AnyArguments<'_>> {
        let mut q = sqlx::query(&self.sql);
        for a in &self.args {
            q = match a {
                Arg::Int(v) => q.bind(*v),
                Arg::OptInt(v) => q.bind(*v),
                Arg::Text(v) => q.bind(v.as_ref()),
                Arg::OptText(v) => q.bind(*v),
            };
        }
        q
    }

    /// Binds the arguments to a prepared SQLite statement. SQLite numbers
    /// parameters by first appearance; `$n` names the n-th argument
    /// wherever it appears (as sqlx does).
    pub fn bind_to(&self, st: &mut rusqlite::Statement<'_>) -> rusqlite::Result<()> {
        for i in 1..=st.parameter_count() {
            let n = st.parameter_name(i).and_then(|name| name.strip_prefix('$')).and_then(|n| n.parse::<usize>().ok());
            let arg = self
                .args
                .get(n.unwrap_or(i).wrapping_sub(1))
                .ok_or(rusqlite::Error::InvalidParameterCount(i, self.args.len()))?;
            st.raw_bind_parameter(i, arg)?;
        }
        Ok(())
    }
}

/// A result row, read by column name, from either executor.
pub(crate) trait Cols {
    fn int(&self, col: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError>;
    fn text(&self, col: &str) -> Result<String, StoreError>;
    fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError>;
    fn blob(&self, col: &str) -> Result<Vec<u8>, StoreError>;
}

impl Cols for AnyRow {
    fn int(&self, col: &str) -> Result<i64, StoreError> {
        self.try_get(col).map_err(store_err)
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError> {
        self.try_get(col).map_err(store_err)
    }
    fn text(&self, col: &str) -> Result<String, StoreError> {
        self.try_get(col).map_err(store_err)
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError> {
        self.try_get(col).map_err(store_err)
    }
    fn blob(&self, col: &str) -> Result<Vec<u8>, StoreError> {
        self.try_get(col).map_err(store_err)
    }
}

impl Cols for rusqlite::Row<'_> {
    fn int(&self, col: &str) -> Result<i64, StoreError> {
        self.get(col).map_err(direct_err)
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError> {
        self.get(col).map_err(direct_err)
    }
    fn text(&self, col: &str) -> Result<String, StoreError> {
        self.get(col).map_err(direct_err)
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError> {
        self.get(col).map_err(direct_err)
    }
    fn blob(&self, col: &str) -> Result<Vec<u8>, StoreError> {
        self.get(col).map_err(direct_err)
    }
}

/// A join's columns aliased `<prefix><name>`, read by their plain names, so
/// one table's decoder serves the join.
pub(crate) struct Prefixed<'r> {
    pub row: &'r dyn Cols,
    pub prefix: &'static str,
}

impl Prefixed<'_> {
    /// Calls `f` with `<prefix><col>`, built on the stack: the session
    /// lookup behind every `/me` and forward-auth check reads 19 columns.
    fn named<T>(&self, col: &str, f: impl FnOnce(&str) -> T) -> T {
        let (p, c) = (self.prefix.as_bytes(), col.as_bytes());
        let mut buf = [0u8; 64];
        match buf.get_mut(..p.len() + c.len()) {
            Some(name) => {
                name[..p.len()].copy_from_slice(p);
                name[p.len()..].copy_from_slice(c);
                // Two whole `str`s end to end are UTF-8.
                f(std::str::from_utf8(name).unwrap_or_default())
            }
            None => f(&[self.prefix, col].concat()),
        }
    }
}

impl Cols for Prefixed<'_> {
    fn int(&self, col: &str) -> Result<i64, StoreError> {
        self.named(col, |c| self.row.int(c))
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError> {
        self.named(col, |c| self.row.opt_int(c))
    }
    fn text(&self, col: &str) -> Result<String, StoreError> {
        self.named(col, |c| self.row.text(c))
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError> {
        self.named(col, |c| self.row.opt_text(c))
    }
    fn blob(&self, col: &str) -> Result<Vec<u8>, StoreError> {
        self.named(col, |c| self.row.blob(c))
    }
}

/// A SQLite error from a direct connection, as the store reports it: a
/// unique or primary-key violation is a `Conflict`, as through sqlx.
#[allow(clippy::needless_pass_by_value, reason = "the shape `map_err` takes")]
pub(crate) fn direct_err(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, _) = &e
        && matches!(
            f.extended_code,
            rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        )
    {
        return StoreError::Conflict;
    }
    StoreError::Backend(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(sql: &'static str, args: Vec<Arg<'_>>) -> Vec<i64> {
        let conn = rusqlite::Connection::open_in_memory().expect("memory database");
        let stmt = Stmt { sql: Cow::Borrowed(sql), args };
        let mut st = conn.prepare(&stmt.sql).expect("prepares");
        stmt.bind_to(&mut st).expect("binds");
        let mut rows = st.raw_query();
        let mut out = Vec::new();
        while let Some(r) = rows.next().expect("steps") {
            for i in 0..r.as_ref().column_count() {
                out.push(r.get::<_, i64>(i).expect("an integer"));
            }
        }
        out
    }

    #[test]
    fn a_numbered_parameter_takes_its_own_argument_wherever_it_appears() {
        // SQLite numbers `$2` first here; sqlx and `bind_to` go by the name.
        assert_eq!(run("SELECT $2, $1, $2", vec![Arg::Int(10), Arg::Int(20)]), vec![20, 10, 20]);
    }

    #[test]
    fn null_arguments_bind_as_null() {
        assert_eq!(
            run("SELECT $1 IS NULL, $2 IS NULL, $3 IS NULL", vec![Arg::OptInt(None), Arg::OptText(None), Arg::Int(0)]),
            vec![1, 1, 0]
        );
    }

    #[test]
    fn a_missing_argument_is_an_error_not_a_null() {
        let conn = rusqlite::Connection::open_in_memory().expect("memory database");
        let stmt = Stmt::new("SELECT $1, $2").arg(1);
        let mut st = conn.prepare(&stmt.sql).expect("prepares");
        assert!(stmt.bind_to(&mut st).is_err());
    }

    #[test]
    fn a_unique_violation_is_a_conflict() {
        let conn = rusqlite::Connection::open_in_memory().expect("memory database");
        conn.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY, u TEXT UNIQUE); INSERT INTO t VALUES ('a', 'x');")
            .expect("schema");
        let e = conn.execute("INSERT INTO t VALUES ('a', 'y')", []).expect_err("duplicate key");
        assert!(matches!(direct_err(e), StoreError::Conflict));
        let e = conn.execute("INSERT INTO t VALUES ('b', 'x')", []).expect_err("duplicate unique");
        assert!(matches!(direct_err(e), StoreError::Conflict));
        let e = conn.execute("INSERT INTO nowhere VALUES (1)", []).expect_err("no table");
        assert!(matches!(direct_err(e), StoreError::Backend(_)));
    }

    #[test]
    fn a_prefixed_row_reads_the_aliased_column_short_or_long() {
        let conn = rusqlite::Connection::open_in_memory().expect("memory database");
        let long = format!("{}x", "y".repeat(70));
        let sql = format!("SELECT 1 AS x, 2 AS s_x, 3 AS \"s_{long}\"");
        let mut st = conn.prepare(&sql).expect("prepares");
        let mut rows = st.raw_query();
        let row = rows.next().expect("steps").expect("a row");
        let prefixed = Prefixed { row, prefix: "s_" };
        assert_eq!(prefixed.int("x").expect("s_x"), 2);
        assert_eq!(prefixed.int(&long).expect("past the stack buffer"), 3);
        assert!(prefixed.int("missing").is_err());
    }
}
