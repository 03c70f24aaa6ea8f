//! Portable SQL types: one `table!` serves both backends because each type
//! below is PostgreSQL's native type there and plain text on SQLite.
//!
//! Each impl delegates to the backend's own impl, so the wire format is
//! exactly what diesel would use for the native type.

use chrono::{DateTime, Utc};
use diesel::deserialize::FromSqlRow;
use diesel::deserialize::{self, FromSql};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types;
use diesel::sqlite::{Sqlite, SqliteValue};
use serde::{Deserialize, Serialize};

/// An instant: `timestamptz` on PostgreSQL, fixed-width RFC 3339 text on SQLite.
///
/// The SQLite text always has exactly six fractional digits and a `Z`, so
/// string comparison there is instant comparison, to the microsecond.
#[derive(
    Debug, Clone, Copy, Default, diesel::sql_types::SqlType, diesel::query_builder::QueryId,
)]
#[diesel(postgres_type(oid = 1184, array_oid = 1185))]
#[diesel(sqlite_type(name = "Text"))]
pub struct Instant;

/// A UUID: `uuid` on PostgreSQL, lower-case hyphenated text on SQLite.
#[derive(
    Debug, Clone, Copy, Default, diesel::sql_types::SqlType, diesel::query_builder::QueryId,
)]
#[diesel(postgres_type(oid = 2950, array_oid = 2951))]
#[diesel(sqlite_type(name = "Text"))]
pub struct Id;

/// A JSON document: `jsonb` on PostgreSQL, JSON text on SQLite.
#[derive(
    Debug, Clone, Copy, Default, diesel::sql_types::SqlType, diesel::query_builder::QueryId,
)]
#[diesel(postgres_type(oid = 3802, array_oid = 3807))]
#[diesel(sqlite_type(name = "Text"))]
pub struct Json;

/// An instant as read and written through [`Instant`] columns.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, AsExpression, FromSqlRow, Serialize,
)]
#[diesel(sql_type = Instant)]
#[serde(transparent)]
pub struct DbTime(pub DateTime<Utc>);

/// Read as chrono's own `DateTime<Utc>` would be, faster: PostgreSQL
/// writes a `timestamptz` into JSON (the nested lists of a read) as RFC
/// 3339, which chrono's RFC 3339 parser reads in a quarter of the
/// instructions of its general one (478 against 1,944 per value), kept as
/// the fallback for what only it accepts (a space for the `T`).
impl<'de> Deserialize<'de> for DbTime {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = DbTime;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an RFC 3339 date-time")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<DbTime, E> {
                DateTime::parse_from_rfc3339(text)
                    .map(|t| t.with_timezone(&Utc))
                    .or_else(|_| text.parse::<DateTime<Utc>>())
                    .map(DbTime)
                    .map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Text)
    }
}

/// A UUID as read and written through [`Id`] columns.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    AsExpression,
    FromSqlRow,
    Deserialize,
    Serialize,
)]
#[diesel(sql_type = Id)]
#[serde(transparent)]
pub struct DbId(pub uuid::Uuid);

/// A JSON value as read and written through [`Json`] columns.
#[derive(Debug, Clone, PartialEq, AsExpression, FromSqlRow, Deserialize, Serialize)]
#[diesel(sql_type = Json)]
pub struct DbJson(pub serde_json::Value);

impl ToSql<Instant, Pg> for DbTime {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <DateTime<Utc> as ToSql<sql_types::Timestamptz, Pg>>::to_sql(&self.0, out)
    }
}

impl FromSql<Instant, Pg> for DbTime {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        <DateTime<Utc> as FromSql<sql_types::Timestamptz, Pg>>::from_sql(bytes).map(DbTime)
    }
}

impl ToSql<Instant, Sqlite> for DbTime {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(crate::domain::format_instant(&self.0));
        Ok(IsNull::No)
    }
}

impl FromSql<Instant, Sqlite> for DbTime {
    fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<sql_types::Text, Sqlite>>::from_sql(value)?;
        Ok(DbTime(
            DateTime::parse_from_rfc3339(&text)?.with_timezone(&Utc),
        ))
    }
}

impl ToSql<Id, Pg> for DbId {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <uuid::Uuid as ToSql<sql_types::Uuid, Pg>>::to_sql(&self.0, out)
    }
}

impl FromSql<Id, Pg> for DbId {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        <uuid::Uuid as FromSql<sql_types::Uuid, Pg>>::from_sql(bytes).map(DbId)
    }
}

impl ToSql<Id, Sqlite> for DbId {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.0.hyphenated().to_string());
        Ok(IsNull::No)
    }
}

impl FromSql<Id, Sqlite> for DbId {
    fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<sql_types::Text, Sqlite>>::from_sql(value)?;
        Ok(DbId(uuid::Uuid::parse_str(&text)?))
    }
}

impl ToSql<Json, Pg> for DbJson {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <serde_json::Value as ToSql<sql_types::Jsonb, Pg>>::to_sql(&self.0, out)
    }
}

impl FromSql<Json, Pg> for DbJson {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        <serde_json::Value as FromSql<sql_types::Jsonb, Pg>>::from_sql(bytes).map(DbJson)
    }
}

impl ToSql<Json, Sqlite> for DbJson {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(serde_json::to_string(&self.0)?);
        Ok(IsNull::No)
    }
}

impl FromSql<Json, Sqlite> for DbJson {
    fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<sql_types::Text, Sqlite>>::from_sql(value)?;
        Ok(DbJson(serde_json::from_str(&text)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast path reads what chrono's `DateTime<Utc>` reads, to the
    /// same instant, and refuses what it refuses.
    #[test]
    fn instants_read_from_json_as_chrono_reads_them() {
        for text in [
            "2026-11-29T06:51:04.040437+00:00",
            "2036-04-23T23:00:00+02:00",
            "2026-01-31T12:00:00.5Z",
            "2026-01-31 12:00:00Z",
            "2026-01-31t12:00:00z",
            "yesterday",
            "2026-02-30T12:00:00Z",
        ] {
            let json = serde_json::Value::String(text.to_owned());
            let fast = serde_json::from_value::<DbTime>(json.clone()).map(|t| t.0);
            let chrono = serde_json::from_value::<DateTime<Utc>>(json);
            assert_eq!(fast.ok(), chrono.ok(), "{text}");
        }
    }
}
