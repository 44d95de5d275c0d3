//! Identifier newtypes, so an account id cannot be passed where an
//! authenticator id is expected.

use std::fmt;

use crate::ports::Rng;

macro_rules! id_type {
    ($name:ident) => {
        #[derive(Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// A fresh random (v4) UUID.
            pub fn generate(rng: &dyn Rng) -> Self {
                let mut bytes = [0u8; 16];
                rng.fill(&mut bytes);
                Self(uuid::Builder::from_random_bytes(bytes).into_uuid().to_string())
            }

            /// An id read back from storage or a URL; ids are opaque, so any
            /// text is accepted and simply fails to match when it is wrong.
            pub fn from_stored(s: impl Into<String>) -> Self {
                Self(s.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

id_type!(AccountId);
id_type!(AuthenticatorId);
id_type!(EnrollmentId);
id_type!(RecoveryCodeId);
