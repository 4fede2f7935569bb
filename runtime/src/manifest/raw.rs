//! The manifest as written: serde types, one per table, whose fields check themselves as they
//! are read (each newtype below refuses what it cannot be and says what was expected). The JSON
//! Schema (`warden schema`) is derived from the same types. Nothing here touches the filesystem
//! or the environment: [`super::resolve`] does that, and the checks across fields.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use toml::Spanned;

use super::connect::ConnectRule;
use super::de::from_str;
use super::sockets::{ListenRule, UdpRule};
use super::url::RuleUrl;
use super::{Access, OutputMode, StdinMode};

pub(crate) const HTTP_METHODS: &[&str] =
    &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
/// 64 KiB: one WebAssembly page; a module needs at least that to run at all.
const MIN_MEMORY: u64 = 64 << 10;
/// 16 GiB: above any connector's need, and the most a 64-bit host sensibly reserves for a guest.
const MAX_MEMORY: u64 = 16 << 30;
/// 24 h: the longest wall limit; a run that needs longer is not a connector call.
const MAX_WALL: Duration = Duration::from_secs(24 * 60 * 60);
pub(crate) const SIZE_HINT: &str = "a size such as \"64MiB\" (units B, KiB, MiB, GiB, KB, MB, \
                                    GB) or a whole number of bytes";
const DURATION_HINT: &str = "a duration such as \"30s\" (units ms, s, m, h)";

/// A warden manifest: who a WebAssembly workload acts as and what it may do. Deny by default:
/// an absent key grants nothing.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(title = "warden manifest")]
pub(crate) struct RawManifest {
    #[serde(deserialize_with = "table")]
    pub identity: RawIdentity,
    #[serde(default, deserialize_with = "table")]
    pub workload: RawWorkload,
    /// Files and folders of the host the guest may see, each at a guest path.
    #[serde(default)]
    pub files: Vec<Table<RawFile>>,
    /// The guest's environment: a value, or `{ from-host = "NAME" }` to copy warden's own.
    #[serde(default)]
    #[schemars(with = "BTreeMap<EnvName, EnvValue>")]
    pub env: Ordered<EnvName, Spanned<EnvValue>>,
    #[serde(default, deserialize_with = "table")]
    pub stdio: RawStdio,
    #[serde(default, deserialize_with = "table")]
    pub clocks: RawClocks,
    #[serde(default, deserialize_with = "table")]
    pub random: RawRandom,
    #[serde(default, deserialize_with = "table")]
    pub network: RawNetwork,
    /// HTTP requests the guest may make (components only).
    #[serde(default)]
    pub http: Vec<Table<RawHttp>>,
    /// Secrets, by name: where each value is read from and how it is used.
    #[serde(default)]
    pub secrets: BTreeMap<SecretName, Table<RawSecret>>,
    #[serde(default, deserialize_with = "table")]
    pub limits: RawLimits,
}

/// Who the workload acts as.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
#[schemars(rename = "Identity")]
pub(crate) struct RawIdentity {
    pub name: IdentityName,
    /// A URI; `warden://local/<name>` when absent.
    pub id: Option<Uri>,
    pub owner: Option<NonEmpty>,
}

/// The WebAssembly module and how it is called.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
#[schemars(rename = "Workload")]
pub(crate) struct RawWorkload {
    /// The module, relative to the manifest's folder or absolute; a module given on the
    /// command line overrides it.
    pub module: Option<ModulePath>,
    pub sha256: Option<Sha256>,
    #[serde(default)]
    pub args: Vec<Arg>,
    /// An export to call instead of the command entry point.
    pub invoke: Option<Export>,
    /// The initial working directory a component reads (`wasi:cli/environment`
    /// `initial-cwd`): a guest path inside a granted folder.
    #[schemars(with = "Option<GuestPath>")]
    pub cwd: Option<Spanned<GuestPath>>,
}

/// One file or folder of the host, granted at a guest path.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
#[schemars(rename = "File")]
pub(crate) struct RawFile {
    /// A host path, relative to the manifest's folder or absolute; it must exist.
    #[schemars(with = "NonEmpty")]
    pub host: Spanned<NonEmpty>,
    #[schemars(with = "GuestPath")]
    pub guest: Spanned<GuestPath>,
    /// There is no default: say which is meant.
    pub access: Access,
}

#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
#[schemars(rename = "Stdio")]
pub(crate) struct RawStdio {
    #[serde(default)]
    pub stdin: StdinMode,
    #[serde(default)]
    pub stdout: OutputMode,
    #[serde(default)]
    pub stderr: OutputMode,
}

/// `false` (the default) means a frozen, deterministic clock.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
#[schemars(rename = "Clocks")]
pub(crate) struct RawClocks {
    #[serde(default)]
    pub wall: bool,
    #[serde(default)]
    pub monotonic: bool,
}

/// `false` (the default) means a deterministic, seeded generator.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
#[schemars(rename = "Random")]
pub(crate) struct RawRandom {
    #[serde(default)]
    pub secure: bool,
}

/// Sockets the guest may open (components only).
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
#[schemars(rename = "Network")]
pub(crate) struct RawNetwork {
    /// Destinations of outbound TCP connections.
    #[serde(default)]
    pub connect: Vec<ConnectRule>,
    /// Local addresses the guest may bind a TCP socket to, listen on and accept connections
    /// at.
    #[serde(default)]
    pub listen: Vec<ListenRule>,
    /// UDP peers the guest may send datagrams to and receive them from.
    #[serde(default)]
    pub udp: Vec<UdpRule>,
}

/// An HTTP rule: a URL prefix and the methods allowed below it.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
#[schemars(rename = "Http")]
pub(crate) struct RawHttp {
    pub url: RuleUrl,
    /// `["GET"]` when absent.
    pub methods: Option<Methods>,
}

/// Where a secret's value comes from and how the guest may use it.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
#[schemars(rename = "Secret")]
pub(crate) struct RawSecret {
    pub from: SecretFrom,
    #[serde(default, deserialize_with = "opt_table")]
    pub inject: Option<RawInject>,
    /// Whether the guest may read the value itself (`warden:host/secrets` reveal).
    #[serde(default)]
    pub reveal: bool,
}

/// The broker adds the secret to requests below `url` as this header.
#[derive(Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "{ header = \"…\", format = \"… {secret} …\", url = \"https://…\" }"
)]
#[schemars(rename = "Inject")]
pub(crate) struct RawInject {
    pub header: Header,
    pub format: Format,
    pub url: RuleUrl,
}

/// Limits of one run; each has a default.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
#[schemars(rename = "Limits")]
pub(crate) struct RawLimits {
    /// Linear memory plus tables (default 128MiB).
    pub memory: Option<Memory>,
    /// A deterministic instruction budget; off unless set.
    pub fuel: Option<Fuel>,
    /// Wall-clock time for the whole run (default 30s).
    pub wall: Option<Wall>,
    /// Bytes of stdout plus stderr (default 8MiB).
    pub output: Option<Size>,
    /// Outbound HTTP requests (default 100).
    pub http_requests: Option<Count>,
    /// Bytes sent over network and HTTP (default 16MiB).
    pub egress: Option<Size>,
    /// Bytes of one single-file grant (default 16MiB).
    pub staged_file: Option<Size>,
    /// Live resource handles of a component: streams, descriptors, sockets, HTTP fields
    /// (default 90000, at most 90000).
    pub handles: Option<Handles>,
}

// ---- newtypes: each value checks itself ----------------------------------------------------

/// Deserializes a table type from a table only (serde would also read a struct from an array).
pub(crate) fn table<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    struct V<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a table")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(de::value::MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_map(V(PhantomData))
}

/// A table type read from a table only: in an array of tables or as a map's value, where
/// serde would also read a struct from an array of its fields in order.
pub(crate) struct Table<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Table<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        table(d).map(Table)
    }
}

impl<T: JsonSchema> JsonSchema for Table<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// [`table`], for an optional table.
fn opt_table<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    table(d).map(Some)
}

/// A string newtype: its `Deserialize` (through `$check`, which returns the value or why not)
/// and its schema (`$schema`, a JSON object).
macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident, $expecting:expr, $check:expr, $schema:tt) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
        pub(crate) struct $name(pub String);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let check: fn(&str) -> Result<String, String> = $check;
                from_str(d, $expecting, |s| check(s).map($name))
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

/// "expected …, found …" for a string that is not acceptable.
fn found(expected: &str, s: &str) -> String {
    format!("expected {expected}, found {s:?}")
}

const NAME: &str = "a name of lower-case letters, digits and '-' that starts with a letter or \
                    digit, such as \"payments-connector\"";
string_newtype!(IdentityName, NAME, |s| {
    let mut chars = s.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok { Ok(s.to_owned()) } else { Err(found(NAME, s)) }
}, {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]*$", "description": "The workload's name."});

const URI: &str = "a URI such as \"spiffe://example.com/connectors/payments\"";
string_newtype!(Uri, URI, |s| {
    if is_uri(s) { Ok(s.to_owned()) } else { Err(found(URI, s)) }
}, {"type": "string", "pattern": "^[a-z][a-z0-9+.-]*:\\S+$"});

const NON_EMPTY: &str = "a non-empty string";
string_newtype!(NonEmpty, NON_EMPTY, |s| {
    if s.trim().is_empty() { Err(found(NON_EMPTY, s)) } else { Ok(s.to_owned()) }
}, {"type": "string", "pattern": "\\S"});

const MODULE: &str = "a path to a WebAssembly module such as \"connector.wasm\"";
string_newtype!(ModulePath, MODULE, |s| {
    if s.trim().is_empty() { Err(found(MODULE, s)) } else { Ok(s.to_owned()) }
}, {"type": "string", "pattern": "\\S"});

const HOST_VAR: &str = "the name of a variable in warden's environment";
string_newtype!(HostVar, HOST_VAR, |s| {
    if s.is_empty() || s.contains(['=', '\0']) { Err(found(HOST_VAR, s)) } else { Ok(s.to_owned()) }
}, {"type": "string", "pattern": "^[^=\\u0000]+$"});

const EXPORT: &str = "the name of an exported function";
string_newtype!(Export, EXPORT, |s| {
    if s.trim().is_empty() { Err(found(EXPORT, s)) } else { Ok(s.to_owned()) }
}, {"type": "string", "pattern": "\\S"});

const SHA: &str = "64 hexadecimal digits (a SHA-256 digest)";
string_newtype!(Sha256, SHA, |s| {
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(found(SHA, s))
    }
}, {"type": "string", "pattern": "^[0-9a-fA-F]{64}$", "description": "A SHA-256 pin of the module's bytes."});

string_newtype!(Arg, "a string", |s| {
    // The guest gets its arguments as C strings, which a NUL byte would cut short.
    if s.contains('\0') {
        Err("the argument contains a NUL byte, which a program's arguments cannot hold"
            .to_owned())
    } else {
        Ok(s.to_owned())
    }
}, {"type": "string"});

const GUEST: &str = "an absolute guest path such as \"/data\"";
string_newtype!(
    /// An absolute, normalised guest path: starts with `/`, no `.`/`..`/empty components, no
    /// trailing `/` (except the root itself).
    GuestPath, GUEST, normalise_guest,
    {"type": "string", "pattern": "^/", "description": "An absolute guest path, such as \"/data\"."}
);

const ENV_NAME: &str = "a non-empty name without '=' or NUL";
string_newtype!(EnvName, ENV_NAME, |s| {
    if s.is_empty() || s.contains(['=', '\0']) {
        Err(format!("`{}` is not a valid variable name; expected {ENV_NAME}", s.escape_debug()))
    } else {
        Ok(s.to_owned())
    }
}, {"type": "string", "pattern": "^[^=\\u0000]+$"});

const SECRET_NAME: &str =
    "lower-case letters, digits, '_' and '-', starting with a letter or digit";
string_newtype!(SecretName, SECRET_NAME, |s| {
    let mut chars = s.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!("`{}` is not a valid secret name; expected {SECRET_NAME}", s.escape_debug()))
    }
}, {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]*$"});

const HEADER: &str = "an HTTP header name such as \"Authorization\"";
string_newtype!(Header, HEADER, |s| {
    // RFC 9110 `tchar`.
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if !s.is_empty() && s.bytes().all(token) { Ok(s.to_owned()) } else { Err(found(HEADER, s)) }
}, {"type": "string", "pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"});

const FORMAT: &str = "a header value containing \"{secret}\", such as \"Bearer {secret}\"";
string_newtype!(Format, FORMAT, |s| {
    if s.contains("{secret}") && !s.chars().any(|c| c.is_control() && c != '\t') {
        Ok(s.to_owned())
    } else {
        Err(found(FORMAT, s))
    }
}, {"type": "string", "pattern": "\\{secret\\}"});

const METHOD: &str = "an HTTP method: GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS";
string_newtype!(Method, METHOD, |s| {
    let upper = s.to_ascii_uppercase();
    if HTTP_METHODS.contains(&upper.as_str()) {
        Ok(upper)
    } else {
        Err(format!("expected one of {}, found {s:?}", HTTP_METHODS.join(", ")))
    }
}, {"type": "string", "enum": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS",
    "get", "head", "post", "put", "patch", "delete", "options"]});

/// At least one method, upper case, each once, in the order written.
#[derive(JsonSchema)]
pub(crate) struct Methods(#[schemars(length(min = 1))] pub Vec<Method>);

impl<'de> Deserialize<'de> for Methods {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let all = Vec::<Method>::deserialize(d)?;
        if all.is_empty() {
            return Err(de::Error::custom(format!(
                "expected at least one of {}, found an empty array",
                HTTP_METHODS.join(", ")
            )));
        }
        let mut out: Vec<Method> = Vec::new();
        for m in all {
            if !out.contains(&m) {
                out.push(m);
            }
        }
        Ok(Methods(out))
    }
}

const FROM: &str = "\"env:NAME\" or \"file:PATH\"";
/// Where a secret's value is read from; a `file:` path is resolved later.
#[derive(Debug, Clone)]
pub(crate) enum SecretFrom {
    Env(String),
    File(String),
}

impl<'de> Deserialize<'de> for SecretFrom {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_str(d, FROM, |s| {
            if let Some(var) = s.strip_prefix("env:")
                && !var.is_empty()
                && !var.contains(['=', '\0'])
            {
                return Ok(SecretFrom::Env(var.to_owned()));
            }
            if let Some(file) = s.strip_prefix("file:")
                && !file.is_empty()
            {
                return Ok(SecretFrom::File(file.to_owned()));
            }
            Err(found(FROM, s))
        })
    }
}

impl JsonSchema for SecretFrom {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SecretFrom".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "pattern": "^(env:[^=]+|file:.+)$",
            "description": "\"env:NAME\" (warden's environment) or \"file:PATH\" (relative to the manifest's folder, or absolute)."})
    }
}

/// An `[env]` value: a literal, or a variable of warden's own environment.
pub(crate) enum EnvValue {
    Literal(String),
    FromHost(Spanned<HostVar>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FromHost {
    from_host: Spanned<HostVar>,
}

impl<'de> Deserialize<'de> for EnvValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EnvValue;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or { from-host = \"NAME\" }")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<EnvValue, E> {
                // The guest gets its environment as C strings, which a NUL byte would cut short.
                if s.contains('\0') {
                    return Err(E::custom(
                        "the value contains a NUL byte, which an environment variable cannot hold",
                    ));
                }
                Ok(EnvValue::Literal(s.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<EnvValue, A::Error> {
                let t = FromHost::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(EnvValue::FromHost(t.from_host))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for EnvValue {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "EnvValue".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"oneOf": [
            {"type": "string"},
            {"type": "object", "additionalProperties": false, "required": ["from-host"],
             "properties": {"from-host": {"type": "string",
                "description": "A variable of warden's own environment; it must be set."}}}
        ]})
    }
}

/// A table whose entries keep the order they are written in (`toml`'s `preserve_order`
/// feature, enabled in the workspace for this).
pub(crate) struct Ordered<K, V>(pub Vec<(K, V)>);

impl<K, V> Default for Ordered<K, V> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for Ordered<K, V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct M<K, V>(PhantomData<(K, V)>);
        impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for M<K, V> {
            type Value = Ordered<K, V>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a table")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    out.push(entry);
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(M(PhantomData))
    }
}

/// A size in bytes: a whole number, or a string with a unit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Size(pub u64);

/// Reads a size within `range`; `expected` says what the range is.
fn size_within<'de, D: Deserializer<'de>>(
    d: D,
    range: std::ops::RangeInclusive<u64>,
    expected: &'static str,
) -> Result<u64, D::Error> {
    struct V(std::ops::RangeInclusive<u64>, &'static str);
    impl V {
        fn check<E: de::Error>(&self, n: Option<u64>, written: String) -> Result<u64, E> {
            match n {
                Some(n) if self.0.contains(&n) => Ok(n),
                Some(_) => Err(E::custom(format!("expected {}, found {written}", self.1))),
                None => Err(E::custom(format!("expected {SIZE_HINT}, found {written}"))),
            }
        }
    }
    impl Visitor<'_> for V {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(SIZE_HINT)
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<u64, E> {
            self.check(u64::try_from(n).ok(), format!("integer {n}"))
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<u64, E> {
            self.check(Some(n), format!("integer {n}"))
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<u64, E> {
            self.check(parse_size(s), format!("{s:?}"))
        }
    }
    d.deserialize_any(V(range, expected))
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        size_within(d, 0..=u64::MAX, SIZE_HINT).map(Size)
    }
}

impl JsonSchema for Size {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Size".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"oneOf": [
            {"type": "integer", "minimum": 0},
            {"type": "string", "pattern": "^[0-9]+ ?(B|KiB|MiB|GiB|KB|MB|GB)$"}
        ], "description": SIZE_HINT})
    }
}

/// `[limits] memory`: a size from 64KiB to 16GiB.
#[derive(Debug, Clone, Copy, JsonSchema)]
pub(crate) struct Memory(pub Size);

impl<'de> Deserialize<'de> for Memory {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        size_within(d, MIN_MEMORY..=MAX_MEMORY, "a size from 64KiB to 16GiB")
            .map(|n| Memory(Size(n)))
    }
}

/// Reads a whole number of at least `min`; `expected` says what it counts.
fn whole_number<'de, D: Deserializer<'de>>(
    d: D,
    min: u64,
    expected: &'static str,
) -> Result<u64, D::Error> {
    struct V(u64, &'static str);
    impl Visitor<'_> for V {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.1)
        }
        fn visit_i64<E: de::Error>(self, n: i64) -> Result<u64, E> {
            match u64::try_from(n) {
                Ok(n) => self.visit_u64(n),
                Err(_) => Err(E::custom(format!("expected {}, found integer {n}", self.1))),
            }
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<u64, E> {
            if n >= self.0 {
                Ok(n)
            } else {
                Err(E::custom(format!("expected {}, found integer {n}", self.1)))
            }
        }
    }
    d.deserialize_any(V(min, expected))
}

const FUEL: &str = "a positive whole number of fuel units, such as 10_000_000_000";
/// A positive whole number of fuel units.
#[derive(Debug, Clone, Copy, JsonSchema)]
#[schemars(description = "A positive whole number of fuel units.")]
pub(crate) struct Fuel(#[schemars(range(min = 1))] pub u64);

impl<'de> Deserialize<'de> for Fuel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        whole_number(d, 1, FUEL).map(Fuel)
    }
}

/// A count of 0 or more.
#[derive(Debug, Clone, Copy, JsonSchema)]
pub(crate) struct Count(pub u64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        whole_number(d, 0, "a whole number of requests (0 or more)").map(Count)
    }
}

const HANDLES: &str = "a whole number of handles from 1 to 90000";
/// `[limits] handles`: 1 to [`crate::host_memory::MAX_HANDLES`].
#[derive(Debug, Clone, Copy, JsonSchema)]
#[schemars(description = "Live resource handles of a component, 1 to 90000.")]
pub(crate) struct Handles(#[schemars(range(min = 1, max = 90000))] pub u64);

impl<'de> Deserialize<'de> for Handles {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = whole_number(d, 1, HANDLES)?;
        if n > crate::host_memory::MAX_HANDLES as u64 {
            return Err(de::Error::custom(format!(
                "expected {HANDLES} (above that wasmtime's own per-store cap of 100000 would \
                 end the run first), found integer {n}"
            )));
        }
        Ok(Handles(n))
    }
}

/// `[limits] wall`: a duration above 0 and at most 24h.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wall(pub Duration);

impl<'de> Deserialize<'de> for Wall {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Wall;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(DURATION_HINT)
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Wall, E> {
                Err(E::custom(format!(
                    "expected {DURATION_HINT}; a bare number has no unit, write e.g. \"30s\", \
                     found integer {n}"
                )))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Wall, E> {
                match parse_duration(s) {
                    Some(d) if !d.is_zero() && d <= MAX_WALL => Ok(Wall(d)),
                    Some(_) => Err(E::custom(found("a duration above 0 and at most 24h", s))),
                    None => Err(E::custom(found(DURATION_HINT, s))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Wall {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "pattern": "^[0-9]+ ?(ms|s|m|h)$", "description": DURATION_HINT})
    }
}

/// `scheme:rest`, scheme `[a-z][a-z0-9+.-]*`, `rest` non-empty, no whitespace or controls.
pub(super) fn is_uri(s: &str) -> bool {
    s.split_once(':').is_some_and(|(scheme, rest)| {
        let mut chars = scheme.chars();
        chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+.-".contains(c))
            && !rest.is_empty()
    }) && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Checks a guest path and returns its normal form; the error says why it is not acceptable.
pub(super) fn normalise_guest(guest: &str) -> Result<String, String> {
    const RULE: &str = "guest paths must be absolute and normalised (no `.`, `..` or empty \
                        components)";
    let Some(rest) = guest.strip_prefix('/') else {
        return Err(format!(
            "expected an absolute guest path starting with '/', such as \"/data\", found \
             {guest:?}"
        ));
    };
    if guest.contains('\0') {
        return Err(format!("{guest:?} contains a NUL character; {RULE}"));
    }
    if rest.is_empty() {
        return Ok("/".to_owned());
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    for component in rest.split('/') {
        match component {
            "" => return Err(format!("{guest:?} has an empty component (`//`); {RULE}")),
            "." => return Err(format!("{guest:?} has a `.` component; {RULE}")),
            ".." => return Err(format!("{guest:?} has a `..` component; {RULE}")),
            _ => {}
        }
    }
    Ok(format!("/{rest}"))
}

/// Splits `"64MiB"`/`"30 s"` into its number and unit; `None` if there are no leading digits.
fn split_number(s: &str) -> Option<(u64, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    let (digits, unit) = s.split_at(end);
    let number = digits.parse::<u64>().ok()?;
    Some((number, unit.strip_prefix(' ').unwrap_or(unit)))
}

/// `"64MiB"`, `"64 MiB"`, `"1000B"`, `"1GB"`: a whole number and a unit (binary units are
/// powers of 1024, decimal ones powers of 1000). `None` if malformed or too large.
pub fn parse_size(s: &str) -> Option<u64> {
    let (number, unit) = split_number(s)?;
    let multiplier: u64 = match unit {
        "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    number.checked_mul(multiplier)
}

/// `bytes` in the largest binary unit that divides it evenly (`64 MiB`, `1536 KiB`), as
/// warden prints a size; [`parse_size`] reads it back.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{} {unit}", bytes / size);
        }
    }
    format!("{bytes} B")
}

/// `"500ms"`, `"30s"`, `"2m"`, `"1h"`. `None` if malformed or too large to represent.
pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    let (number, unit) = split_number(s)?;
    match unit {
        "ms" => Some(Duration::from_millis(number)),
        "s" => Some(Duration::from_secs(number)),
        "m" => number.checked_mul(60).map(Duration::from_secs),
        "h" => number.checked_mul(3600).map(Duration::from_secs),
        _ => None,
    }
}
