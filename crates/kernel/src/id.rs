//! Typed identifiers: UUIDv7 newtypes, so a `UserId` never stands where an `OrderId` belongs.

/// Declares a UUIDv7-backed identifier type.
#[macro_export]
macro_rules! typed_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A new, time-ordered identifier.
            pub fn new() -> Self {
                Self(uuid::Uuid::now_v7())
            }

            pub fn from_uuid(id: uuid::Uuid) -> Self {
                Self(id)
            }

            pub fn parse(raw: &str) -> Result<Self, $crate::id::IdError> {
                uuid::Uuid::parse_str(raw)
                    .map(Self)
                    .map_err(|_| $crate::id::IdError)
            }

            pub fn as_uuid(&self) -> uuid::Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::id::IdError;
            fn from_str(raw: &str) -> Result<Self, Self::Err> {
                Self::parse(raw)
            }
        }

        impl From<uuid::Uuid> for $name {
            fn from(id: uuid::Uuid) -> Self {
                Self(id)
            }
        }

        impl $crate::reexport::utoipa::PartialSchema for $name {
            fn schema() -> $crate::reexport::utoipa::openapi::RefOr<$crate::reexport::utoipa::openapi::schema::Schema> {
                use $crate::reexport::utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
                    .into()
            }
        }

        impl $crate::reexport::utoipa::ToSchema for $name {}
    };
}

/// The text was not a UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a valid identifier")]
pub struct IdError;

typed_id!(
    /// A user account (identity context), also the subject of access tokens.
    UserId
);
typed_id!(
    /// A product (catalog context).
    ProductId
);
typed_id!(
    /// An order (ordering context).
    OrderId
);
typed_id!(
    /// A shipment (shipping context).
    ShipmentId
);
typed_id!(
    /// A category (catalog context).
    CategoryId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_time_ordered_and_round_trip_through_text() {
        let a = OrderId::new();
        let b = OrderId::new();
        assert!(a <= b);
        assert_eq!(OrderId::parse(&a.to_string()), Ok(a));
        assert_eq!(OrderId::parse("not-a-uuid"), Err(IdError));
    }
}
