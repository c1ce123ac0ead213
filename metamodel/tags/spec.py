"""The shapes of ``tags/**/*.yaml`` files, as pydantic models.

Import time builds the classes; nothing is read from disk here. A tags file is one of three
kinds, told apart by its first key: ``scan_classes:`` (named scan rates), ``template:`` (a
set of tags instantiated per asset, like an Ignition UDT) or ``site:`` (devices, template
instances and stand-alone tags of one site). :mod:`metamodel.tags.loader` validates each
document against its kind's model and then resolves them into one
:class:`~metamodel.tags.model.TagModel`. Every class is frozen, strict and rejects unknown
keys, like the module language in :mod:`metamodel.spec`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from ..spec import LabelText, Name, Spec
from .alarmspec import AlarmSpec, SiteAlarmsSpec
from .history import HistorySpec, SiteHistorySpec

#: A tag path segment (``pip``) or a dotted path below the site (``sep1.inlet.pressure``).
PATH_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"
PathName = Annotated[str, StringConstraints(pattern=PATH_PATTERN, max_length=200)]
#: An environment variable name (``PAD7_OPCUA_PASSWORD``).
ENV_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
EnvName = Annotated[str, StringConstraints(pattern=ENV_PATTERN, max_length=128)]
#: ``1s``, ``500ms``, ``2m``, ``1h`` or a number of seconds.
DURATION_PATTERN = r"^\s*\d+(\.\d+)?\s*(ms|s|m|h)\s*$"
#: a share of the span: ``0.5%``
PERCENT_PATTERN = r"^\s*\d+(\.\d+)?\s*%\s*$"

DATA_TYPES: tuple[str, ...] = (
    "bool", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64",
    "string",
)
DataTypeName = Literal["bool", "int16", "uint16", "int32", "uint32", "int64", "uint64",
                       "float32", "float64", "string"]
Order = Literal["big", "little"]
#: Modbus tables by their long names, plus the short forms used in addresses.
FUNCTIONS: tuple[str, ...] = ("coil", "discrete_input", "input_register", "holding_register")
FunctionName = Literal["coil", "discrete_input", "input_register", "holding_register",
                       "co", "di", "ir", "hr"]
#: built-in roles that may write a writable tag when ``write_roles`` is not given
DEFAULT_WRITE_ROLES: tuple[str, ...] = ("admin", "supervisor", "operator")

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def seconds(value: float | str) -> float:
    """A :data:`Duration` in seconds (``'500ms'`` -> 0.5)."""
    if isinstance(value, (int, float)):
        return float(value)
    m = re.match(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$", value)
    if not m:
        raise ValueError(f"'{value}' is not a duration such as 500ms, 1s, 2m")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _positive(value: float | str) -> float | str:
    if seconds(value) <= 0:
        shown = f"'{value.strip()}'" if isinstance(value, str) else f"{value:g}"
        raise ValueError(f"a scan period must be longer than 0, got {shown}")
    return value


Duration = Annotated[float, Field(gt=0)] | Annotated[
    str, StringConstraints(pattern=DURATION_PATTERN)]
#: a scan period: a :data:`Duration` longer than 0 also when written with a unit (a zero
#: period would poll without pause and divide the plan's figures by zero)
Period = Annotated[float, AfterValidator(_positive),
                   Field(json_schema_extra={"exclusiveMinimum": 0})] | Annotated[
    str, StringConstraints(pattern=DURATION_PATTERN), AfterValidator(_positive)]

Number = Annotated[float, Field(allow_inf_nan=False)]
Pair = Annotated[list[Number], Field(min_length=2, max_length=2)]


class ScanClassSpec(Spec):
    """A named scan rate: every tag of the class is read once per ``period``."""

    period: Period
    description: str | None = None


class ScanClassesFile(Spec):
    """``tags/scan_classes.yaml``: the scan classes every template and site may name."""

    scan_classes: dict[Name, ScanClassSpec]


# --------------------------------------------------------------------------- devices


class DeviceBase(Spec):
    """Options every device accepts."""

    description: str | None = None
    #: a disabled device is not polled; its tags stay BAD with reason 'disabled'
    enabled: bool = True
    #: how long one request may take before the point is BAD
    timeout: Duration = 1.0
    #: first and largest wait between reconnection attempts (exponential, with jitter)
    reconnect_delay: Duration = 0.5
    reconnect_delay_max: Duration = 30.0


class ModbusOptions(Spec):
    """Request-planning options shared by Modbus TCP and RTU."""

    #: unit id used by tags and instances that give none
    unit_id: Annotated[int, Field(ge=0, le=255)] = 1
    max_registers: Annotated[int, Field(ge=1, le=125)] = 125
    max_bits: Annotated[int, Field(ge=1, le=2000)] = 2000
    #: largest run of unused registers read to join two tags into one request
    max_gap: Annotated[int, Field(ge=0, le=124)] = 0
    #: the same for coils and discrete inputs (default: 16 x max_gap)
    max_bit_gap: Annotated[int, Field(ge=0, le=1999)] | None = None
    #: device-wide defaults for tags that give none
    byte_order: Order = "big"
    word_order: Order = "big"


class ModbusTcpSpec(DeviceBase, ModbusOptions):
    """A Modbus TCP device or gateway (several unit ids behind one address)."""

    type: Literal["modbus_tcp"]
    host: Annotated[str, StringConstraints(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)] = 502
    #: connections opened to the device; one connection serialises its requests
    concurrency: Annotated[int, Field(ge=1, le=16)] = 1
    #: assumed round trip of one request, for ``campo tags plan`` (``--measure`` measures it)
    round_trip: Duration = "5ms"


class ModbusRtuSpec(DeviceBase, ModbusOptions):
    """A Modbus RTU serial line; its instances and tags name the unit ids on it."""

    type: Literal["modbus_rtu"]
    port: Annotated[str, StringConstraints(min_length=1)]
    baudrate: Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    #: unit ids present on the line; when given, instances must use one of them
    units: list[Annotated[int, Field(ge=1, le=247)]] = []
    #: time a unit takes to start answering, for ``campo tags plan``
    turnaround: Duration = "10ms"


SECURITY_POLICIES: tuple[str, ...] = (
    "None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss")


class OpcUaSpec(DeviceBase):
    """An OPC-UA server."""

    type: Literal["opcua"]
    endpoint: Annotated[str, StringConstraints(pattern=r"^opc\.tcp://[^\s]+$")]
    security_policy: Literal["None", "Basic256Sha256", "Aes128_Sha256_RsaOaep",
                             "Aes256_Sha256_RsaPss"] = "None"
    security_mode: Literal["None", "Sign", "SignAndEncrypt"] = "None"
    username: str | None = None
    #: environment variable holding the password (never the password itself)
    password_env: EnvName | None = None
    certificate: str | None = None
    private_key: str | None = None
    server_certificate: str | None = None
    #: namespace URI for node ids that name none (``s=W1.IntakePressure``)
    namespace: str | None = None

    @model_validator(mode="after")
    def _security(self) -> OpcUaSpec:
        if (self.security_policy == "None") != (self.security_mode == "None"):
            raise ValueError(
                f"security_policy '{self.security_policy}' does not go with security_mode "
                f"'{self.security_mode}': both are 'None', or neither is")
        if self.security_policy != "None" and not (self.certificate and self.private_key):
            raise ValueError(f"security_policy '{self.security_policy}' needs 'certificate' "
                             "and 'private_key' (paths to the client's PEM or DER files)")
        if self.password_env and not self.username:
            raise ValueError("'password_env' needs a 'username'")
        return self


class SparkplugSpec(Spec):
    """Where a Sparkplug B edge node publishes: ``spBv1.0/<group>/DDATA/<edge_node>/<device>``."""

    group: Annotated[str, StringConstraints(pattern=r"^[^/#+\s]+$")]
    edge_node: Annotated[str, StringConstraints(pattern=r"^[^/#+\s]+$")]
    device: Annotated[str, StringConstraints(pattern=r"^[^/#+\s]+$")] | None = None


class MqttSpec(DeviceBase):
    """An MQTT broker carrying plain JSON payloads or Sparkplug B."""

    type: Literal["mqtt"]
    broker: Annotated[str, StringConstraints(pattern=r"^mqtts?://[^\s]+$")]
    client_id: str | None = None
    username: str | None = None
    password_env: EnvName | None = None
    qos: Literal[0, 1, 2] = 1
    format: Literal["json", "sparkplug_b"] = "json"
    #: subscription filters; default: the topics the tags name
    topics: list[Annotated[str, StringConstraints(min_length=1)]] = []
    sparkplug: SparkplugSpec | None = None

    @model_validator(mode="after")
    def _format(self) -> MqttSpec:
        if self.format == "sparkplug_b" and self.sparkplug is None:
            raise ValueError("format 'sparkplug_b' needs 'sparkplug: {group, edge_node}'")
        if self.format == "json" and self.sparkplug is not None:
            raise ValueError("'sparkplug' is only for format 'sparkplug_b'")
        if self.password_env and not self.username:
            raise ValueError("'password_env' needs a 'username'")
        return self


DeviceSpec = Annotated[ModbusTcpSpec | ModbusRtuSpec | OpcUaSpec | MqttSpec,
                       Field(discriminator="type")]
DEVICE_TYPES: tuple[str, ...] = ("modbus_tcp", "modbus_rtu", "opcua", "mqtt")


# --------------------------------------------------------------------------- tags


class ScaleSpec(Spec):
    """Linear scaling: ``raw`` range onto ``eng`` range, or ``factor`` and ``offset``."""

    raw: Pair | None = None
    eng: Pair | None = None
    factor: Number | None = None
    offset: Number | None = None
    #: keep the engineering value inside ``eng`` (quality UNCERTAIN when it was outside)
    clamp: bool = False

    @model_validator(mode="after")
    def _form(self) -> ScaleSpec:
        ranges = self.raw is not None or self.eng is not None
        linear = self.factor is not None or self.offset is not None
        if ranges and linear:
            raise ValueError("give either 'raw' and 'eng' ranges or 'factor'/'offset', not both")
        if not ranges and not linear:
            raise ValueError("give 'raw' and 'eng' ranges, or a 'factor' (and an 'offset')")
        if ranges and (self.raw is None or self.eng is None):
            raise ValueError("'raw' and 'eng' go together: raw: [0, 10000], eng: [0, 100]")
        if self.raw is not None and self.raw[0] == self.raw[1]:
            raise ValueError(f"the raw range [{self.raw[0]}, {self.raw[1]}] is empty")
        if self.factor == 0:
            raise ValueError("a factor of 0 maps every raw value to the offset")
        if self.clamp and not ranges:
            raise ValueError("'clamp' needs 'raw' and 'eng' ranges to clamp to")
        return self


class LimitsSpec(Spec):
    """The engineering values a write may set."""

    min: Number | None = None
    max: Number | None = None

    @model_validator(mode="after")
    def _order(self) -> LimitsSpec:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


_STRING_N = re.compile(r"^\s*string\s*\(\s*(\d+)\s*\)\s*$")


class TagSpec(Spec):
    """One tag: where it is read, how the raw value becomes an engineering value."""

    # -- where: Modbus
    address: str | int | None = None
    function: FunctionName | None = None
    offset: Annotated[int, Field(ge=0, le=65535)] | None = None
    bit: Annotated[int, Field(ge=0, le=15)] | None = None
    unit_id: Annotated[int, Field(ge=0, le=255)] | None = None
    # -- where: OPC-UA
    node: Annotated[str, StringConstraints(min_length=1)] | None = None
    # -- where: MQTT (plain JSON: topic + value path; Sparkplug B: metric)
    topic: Annotated[str, StringConstraints(min_length=1)] | None = None
    path: str | None = None
    timestamp_path: str | None = None
    metric: Annotated[str, StringConstraints(min_length=1)] | None = None
    # -- what
    type: DataTypeName | None = None
    length: Annotated[int, Field(ge=1, le=250)] | None = None
    byte_order: Order | None = None
    word_order: Order | None = None
    scale: ScaleSpec | None = None
    unit: str | None = None
    label: LabelText | None = None
    description: str | None = None
    range: Pair | None = None
    deadband: Annotated[float, Field(ge=0)] | Annotated[
        str, StringConstraints(pattern=PERCENT_PATTERN)] | None = None
    scan_class: Name | None = None
    writable: bool = False
    write_roles: list[Name] | None = None
    limits: LimitsSpec | None = None
    #: retention and compaction of this tag's history (docs/historian.md)
    history: HistorySpec | None = None
    #: the tag's former name(s): inside its template, or its path below the site
    renamed_from: PathName | list[PathName] | None = None

    @model_validator(mode="before")
    @classmethod
    def _string_n(cls, data: Any) -> Any:
        """Accept ``type: string(20)`` as ``type: string`` plus ``length: 20``."""
        if isinstance(data, dict) and isinstance(data.get("type"), str):
            m = _STRING_N.match(data["type"])
            if m and "length" not in data:
                data = {**data, "type": "string", "length": int(m.group(1))}
        return data


class SiteTagSpec(TagSpec):
    """A stand-alone tag of a site; it names its device."""

    device: Name


class ParameterSpec(Spec):
    """A template parameter: a text substituted for ``${name}`` in the template's strings."""

    description: str | None = None
    default: str | None = None


class TemplateFile(Spec):
    """``tags/templates/<name>.yaml``: tags shared by every asset of a kind."""

    template: Name
    label: LabelText | None = None
    description: str | None = None
    parameters: dict[Name, ParameterSpec] = {}
    #: scan class of the tags that name none
    scan_class: Name | None = None
    #: retention and compaction of the history of this template's tags
    history: HistorySpec | None = None
    tags: dict[PathName, TagSpec]
    #: alarm rules every instance gets (:mod:`metamodel.tags.alarmspec`)
    alarms: dict[Name, AlarmSpec] = {}


class BindSpec(Spec):
    """The ERP record an instance stands for: ``{entity: showcase.asset, key: code, value: W1}``."""

    entity: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")]
    key: Name = "code"
    value: str | int


class InstanceSpec(Spec):
    """One asset: a template on a device, with its unit id, base address and parameters."""

    template: Name
    device: Name
    unit_id: Annotated[int, Field(ge=0, le=255)] | None = None
    #: added to every Modbus offset of the template (the asset's first register)
    base: Annotated[int, Field(ge=0, le=65535)] = 0
    params: dict[Name, str | int | float | bool] = {}
    scan_class: Name | None = None
    bind: BindSpec | None = None
    label: LabelText | None = None
    #: the instance's former path below the site (its tags keep their history)
    renamed_from: PathName | None = None


class SiteParameterSpec(Spec):
    """A site setting with a default, overridable per deployment (``env`` or ``--set``)."""

    type: Literal["string", "int", "float", "bool"] = "string"
    default: str | int | float | bool | None = None
    env: EnvName | None = None
    description: str | None = None


class SiteFile(Spec):
    """``tags/sites/<name>.yaml``: one site's devices, asset instances and loose tags."""

    site: Name
    label: LabelText | None = None
    description: str | None = None
    parameters: dict[Name, SiteParameterSpec] = {}
    #: scan class of the stand-alone tags that name none
    scan_class: Name | None = None
    #: history defaults of the site's tags, offline days, production day (docs/historian.md)
    history: SiteHistorySpec | None = None
    devices: dict[Name, DeviceSpec] = {}
    instances: dict[PathName, InstanceSpec] = {}
    tags: dict[PathName, SiteTagSpec] = {}
    #: alarm rules over the site's tags, and site-wide alarm settings
    alarms: dict[Name, AlarmSpec] = {}
    alarm_settings: SiteAlarmsSpec | None = None
