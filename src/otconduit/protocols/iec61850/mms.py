"""MMS PDUs (ISO 9506-2 §7) from their BER encoding: the PDU kind, invoke id and service
first (classification), then what is cheap to decode per service (variable names,
written and read values, file names, identity, error and reject reasons).

:func:`parse_mms` never raises: a PDU whose outer structure is broken is returned as a
reason string; one whose kind and service are known but whose arguments break keeps
what was decoded, with ``problem`` set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from otconduit.protocols.iec61850 import ber
from otconduit.protocols.iec61850 import services as S
from otconduit.protocols.iec61850.ber import CONTEXT, BerError, Tlv

MAX_NAMES: Final = 64  # variable / identifier names kept per PDU


@dataclass(frozen=True, slots=True, kw_only=True)
class MmsPdu:
    """One MMS PDU: ``kind`` is the MMSpdu choice (:data:`services.PDU_NAMES`)."""

    kind: int
    invoke_id: int | None = None
    service: int | None = None  # confirmed / unconfirmed service number
    info: dict[str, Any] = field(default_factory=dict)
    error: tuple[int, int] | None = None  # (error class, code) or (reject reason, code)
    problem: str | None = None

    @property
    def kind_name(self) -> str:
        return S.PDU_NAMES.get(self.kind, f"pdu-{self.kind}")

    @property
    def service_name(self) -> str:
        if self.kind == S.UNCONFIRMED:
            return S.UNCONFIRMED_SERVICES.get(self.service or 0, f"unconfirmed-{self.service}")
        return S.confirmed_name(self.service)


def looks_like_mms(data: bytes) -> bool:
    """Whether ``data`` starts like an MMS PDU: a context-class tag 0-13 of the MMSpdu
    choice, constructed except for the primitive cancel and conclude PDUs."""
    if len(data) < 2:
        return False
    b = data[0]
    if b >> 6 != CONTEXT or b & 0x1F > 13:
        return False
    return bool(b & 0x20) != ((b & 0x1F) in (5, 6, 11, 12))


def parse_mms(data: bytes) -> MmsPdu | str:
    """Decode one MMS PDU (the whole of ``data``)."""
    try:
        top = ber.read_tlv(data, 0, len(data))
    except BerError as exc:
        return f"MMS PDU: {exc}"
    if top.cls != CONTEXT or top.tag > 13:
        return f"not an MMS PDU (identifier 0x{data[0]:02x})"
    kind = top.tag
    extra = len(data) - top.end
    try:
        pdu = _PARSERS.get(kind, _empty)(data, top)
    except BerError as exc:
        return f"{S.PDU_NAMES[kind]}: {exc}"
    if extra:
        problem = f"{extra} bytes after the PDU"
        return MmsPdu(
            kind=pdu.kind,
            invoke_id=pdu.invoke_id,
            service=pdu.service,
            info=pdu.info,
            error=pdu.error,
            problem=pdu.problem or problem,
        )
    return pdu


# -- PDU kinds -------------------------------------------------------------------------
def _empty(data: bytes, top: Tlv) -> MmsPdu:
    """Conclude request/response (NULL) and kinds without arguments worth decoding."""
    return MmsPdu(kind=top.tag)


def _invoke(data: bytes, tlv: Tlv) -> int:
    if tlv.cls != ber.UNIVERSAL or tlv.tag != 2:
        raise BerError("invokeID missing")
    return ber.unsigned(data, tlv)


def _confirmed(data: bytes, top: Tlv) -> MmsPdu:
    """Confirmed-RequestPDU / -ResponsePDU (§7.2): invokeID, [listOfModifier (request)],
    then the service choice."""
    if not top.constructed:
        raise BerError("primitive confirmed PDU")
    items = list(ber.children(data, top))
    if not items:
        raise BerError("empty confirmed PDU")
    invoke = _invoke(data, items[0])
    rest = items[1:]
    if top.tag == S.CONFIRMED_REQUEST and rest and rest[0].cls == ber.UNIVERSAL:
        rest = rest[1:]  # listOfModifier SEQUENCE OF Modifier
    if not rest:
        return MmsPdu(kind=top.tag, invoke_id=invoke, problem="no service in the PDU")
    svc = rest[0]
    if svc.cls != CONTEXT:
        return MmsPdu(kind=top.tag, invoke_id=invoke, problem="service without a context tag")
    info: dict[str, Any] = {}
    problem = None
    try:
        decode = (_REQUESTS if top.tag == S.CONFIRMED_REQUEST else _RESPONSES).get(svc.tag)
        if decode is not None:
            decode(data, svc, info)
    except BerError as exc:
        problem = f"{S.confirmed_name(svc.tag)} arguments: {exc}"
    return MmsPdu(kind=top.tag, invoke_id=invoke, service=svc.tag, info=info, problem=problem)


def _confirmed_error(data: bytes, top: Tlv) -> MmsPdu:
    """Confirmed-ErrorPDU (§7.2.3): invokeID [0], modifierPosition [1], serviceError [2]."""
    parts = ber.by_tag(data, top)
    invoke = ber.unsigned(data, parts[0]) if 0 in parts else None
    error = _service_error(data, parts[2]) if 2 in parts else None
    return MmsPdu(
        kind=top.tag,
        invoke_id=invoke,
        error=error,
        problem=None if error else "no serviceError",
    )


def _service_error(data: bytes, tlv: Tlv) -> tuple[int, int]:
    """ServiceError (§7.5.2): errorClass [0] CHOICE { class [n] INTEGER }, ..."""
    parts = ber.by_tag(data, tlv)
    if 0 not in parts:
        raise BerError("serviceError without errorClass")
    cls = ber.first(data, parts[0])
    return cls.tag, ber.integer(data, cls)


def _unconfirmed(data: bytes, top: Tlv) -> MmsPdu:
    """Unconfirmed-PDU (§7.4): the service choice (informationReport [0], ...)."""
    svc = ber.first(data, top)
    info: dict[str, Any] = {}
    problem = None
    if svc.tag == 0:
        try:
            _information_report(data, svc, info)
        except BerError as exc:
            problem = f"informationReport: {exc}"
    return MmsPdu(kind=top.tag, service=svc.tag, info=info, problem=problem)


def _reject(data: bytes, top: Tlv) -> MmsPdu:
    """RejectPDU (§7.6): originalInvokeID [0] (optional), rejectReason CHOICE [1..11]."""
    invoke = None
    error = None
    for tlv in ber.children(data, top):
        if tlv.tag == 0:
            invoke = ber.unsigned(data, tlv)
        else:
            error = (tlv.tag, ber.integer(data, tlv))
    return MmsPdu(kind=top.tag, invoke_id=invoke, error=error)


def _cancel(data: bytes, top: Tlv) -> MmsPdu:
    """Cancel request/response (§7.7): an implicit Unsigned32 invoke id."""
    if top.constructed:
        parts = ber.by_tag(data, top)  # cancel-ErrorPDU: originalInvokeID [0], serviceError [1]
        invoke = ber.unsigned(data, parts[0]) if 0 in parts else None
        error = _service_error(data, parts[1]) if 1 in parts else None
        return MmsPdu(kind=top.tag, invoke_id=invoke, error=error)
    return MmsPdu(kind=top.tag, invoke_id=ber.unsigned(data, top))


def _initiate(data: bytes, top: Tlv) -> MmsPdu:
    """Initiate request/response (§8.2, ISO 9506-2 §8.2.1): local detail [0], max services
    outstanding calling [1] / called [2], nesting level [3], init detail [4] (version
    [0], parameter CBB [1], services supported [2])."""
    info: dict[str, Any] = {}
    if top.tag == S.INITIATE_ERROR:
        parts = ber.by_tag(data, top)
        cls = ber.first(data, parts[0]) if 0 in parts else None
        error = (cls.tag, ber.integer(data, cls)) if cls is not None else None
        return MmsPdu(kind=top.tag, error=error)
    for tlv in ber.children(data, top):
        if tlv.tag == 0 and not tlv.constructed:
            info["local_detail"] = ber.integer(data, tlv)
        elif tlv.tag == 1:
            info["max_serv_outstanding_calling"] = ber.integer(data, tlv)
        elif tlv.tag == 2:
            info["max_serv_outstanding_called"] = ber.integer(data, tlv)
        elif tlv.tag == 3:
            info["data_structure_nesting_level"] = ber.integer(data, tlv)
        elif tlv.tag == 4 and tlv.constructed:
            for sub in ber.children(data, tlv):
                if sub.tag == 0:
                    info["version"] = ber.integer(data, sub)
                elif sub.tag == 1:
                    info["parameter_cbb"] = data[sub.start : sub.end].hex()
                elif sub.tag == 2:
                    info["services_supported"] = data[sub.start : sub.end].hex()
    return MmsPdu(kind=top.tag, info=info)


_PARSERS: Final = {
    S.CONFIRMED_REQUEST: _confirmed,
    S.CONFIRMED_RESPONSE: _confirmed,
    S.CONFIRMED_ERROR: _confirmed_error,
    S.UNCONFIRMED: _unconfirmed,
    S.REJECT: _reject,
    S.CANCEL_REQUEST: _cancel,
    S.CANCEL_RESPONSE: _cancel,
    S.CANCEL_ERROR: _cancel,
    S.INITIATE_REQUEST: _initiate,
    S.INITIATE_RESPONSE: _initiate,
    S.INITIATE_ERROR: _initiate,
}


# -- names -------------------------------------------------------------------------------
def object_name(data: bytes, tlv: Tlv) -> str:
    """ObjectName (§14.4.1): vmd-specific [0] Identifier, domain-specific [1] {domainId,
    itemId} as ``domain/item`` (IEC 61850: ``LD/LN$FC$DO``), aa-specific [2]."""
    if tlv.tag == 0 and not tlv.constructed:
        return ber.text(data, tlv)
    if tlv.tag == 1 and tlv.constructed:
        parts = [ber.text(data, t) for t in ber.children(data, tlv)]
        if len(parts) != 2:
            raise BerError("domain-specific name of other than two parts")
        return f"{parts[0]}/{parts[1]}"
    if tlv.tag == 2 and not tlv.constructed:
        return "@" + ber.text(data, tlv)
    raise BerError(f"ObjectName choice [{tlv.tag}]")


def _variable_specification(data: bytes, vas: Tlv, info: dict[str, Any]) -> None:
    """VariableAccessSpecification (§14.4.3): listOfVariable [0] SEQUENCE OF {
    variableSpecification (name [0] ObjectName | ...), alternateAccess [5] } or
    variableListName [1] ObjectName."""
    if vas.tag == 1:
        info["variable_list"] = object_name(data, ber.first(data, vas))
        return
    if vas.tag != 0:
        raise BerError(f"VariableAccessSpecification choice [{vas.tag}]")
    names: list[str] = []
    total = 0
    for entry in ber.children(data, vas):
        total += 1
        spec = ber.first(data, entry)
        if len(names) >= MAX_NAMES:
            continue
        if spec.tag == 0:
            names.append(object_name(data, ber.first(data, spec)))
        elif spec.tag == 1:
            names.append("address:" + data[spec.start : spec.end].hex())
        else:
            names.append(f"[{spec.tag}]")
    info["variables"] = names
    info["variable_count"] = total


def _file_name(data: bytes, tlv: Tlv) -> str:
    """FileName (§14.3): SEQUENCE OF GraphicString, joined with '/'."""
    return "/".join(ber.text(data, t) for t in ber.children(data, tlv))


def _access_results(data: bytes, tlv: Tlv, info: dict[str, Any]) -> None:
    """SEQUENCE OF AccessResult (§14.4.2): failure [0] DataAccessError | success Data."""
    values: list[Any] = []
    failures: list[int] = []
    total = 0
    for item in ber.children(data, tlv):
        total += 1
        if item.tag == 0 and not item.constructed:
            failures.append(ber.integer(data, item))
            values.append(None)
        elif len(values) < ber.MAX_ITEMS:
            values.append(ber.data_value(data, item))
    info["values"] = values
    info["result_count"] = total
    if failures:
        info["failures"] = failures


def _information_report(data: bytes, svc: Tlv, info: dict[str, Any]) -> None:
    """InformationReport (§7.4.1): VariableAccessSpecification, listOfAccessResult [0]."""
    items = list(ber.children(data, svc))
    if len(items) < 2:
        raise BerError("informationReport of fewer than two parts")
    _variable_specification(data, items[0], info)
    _access_results(data, items[1], info)


# -- requests ---------------------------------------------------------------------------
Decoder = Any  # (data, tlv, info) -> None


def _read_req(data: bytes, svc: Tlv, info: dict[str, Any]) -> None:
    """Read-Request (§14.6): specificationWithResult [0], variableAccessSpecification [1]."""
    for tlv in ber.children(data, svc):
        if tlv.tag == 0:
            info["specification_with_result"] = ber.boolean(data, tlv)
        elif tlv.tag == 1:
            _variable_specification(data, ber.first(data, tlv), info)


def _write_req(data: bytes, svc: Tlv, info: dict[str, Any]) -> None:
    """Write-Request (§14.7): VariableAccessSpecification, listOfData [0]."""
    items = list(ber.children(data, svc))
    if len(items) < 2:
        raise BerError("write request of fewer than two parts")
    _variable_specification(data, items[0], info)
    info["values"] = ber.data_list(data, items[1])
    info["value_count"] = ber.count(data, items[1])


def _get_name_list_req(data: bytes, svc: Tlv, info: dict[str, Any]) -> None:
    """GetNameList-Request (§10.5): objectClass [0], objectScope [1] (vmdSpecific [0],
    domainSpecific [1] Identifier, aaSpecific [2]), continueAfter [2]."""
    for tlv in ber.children(data, svc):
        if tlv.tag == 0:
            cls = ber.first(data, tlv)
            number = ber.integer(data, cls)
            info["object_class"] = S.OBJECT_CLASSES.get(number, str(number))
        elif tlv.tag == 1:
            scope = ber.first(data, tlv)
            info["object_scope"] = ("vmd", "domain", "aa")[scope.tag] if scope.tag < 3 else "?"
            if scope.tag == 1:
                info["domain"] = ber.text(data, scope)
        elif tlv.tag == 2:
            info["continue_after"] = ber.text(data, tlv)


def _name_req(data: bytes, svc: Tlv, info: dict[str, Any]) -> None:
    """GetVariableAccessAttributes (name [0] ObjectName | address [1]) and
    Get/DeleteNamedVariableList attributes (ObjectName)."""
    inner = ber.first(data, svc)
    if svc.tag == 6:
        if inner.tag == 0:
            info["variables"] = [object_name(data, ber.first(data, inner))]
        return
    info["variable_list"] = object_name(data, inner)


def _identifier_req(data: bytes, svc: Tlv, info: dict[str, Any]) -> None:
    """Services whose request is one Identifier (getDomainAttributes, deleteDomain,
    deleteProgramInvocation, getProgramInvocationAttributes)."""
    key = "domain" if svc.tag in (36, 37) else "program_invocation"
    info[key] = ber.text(data, svc)


def _program_req(data: bytes, svc: Tlv, info: dict[str, Any]) -> None:
    """Start/Stop/Resume/Reset/Kill (§11.6-11.10): programInvocationName [0] first."""
    for tlv in ber.children(data, svc):
        if tlv.tag == 0 and not tlv.constructed:
            info["program_invocation"] = ber.text(data, tlv)
            return


def _domain_req(data: bytes, svc: Tlv, info: dict[str, Any]) -> None:
    """Download/upload and domain content services: domainName first (an Identifier, [0]
    or bare)."""
    if not svc.constructed:
        info["domain"] = ber.text(data, svc)
        return
    for tlv in ber.children(data, svc):
        if not tlv.constructed:
            info["domain"] = ber.text(data, tlv)
            return


def _semaphore_req(data: bytes, svc: Tlv, info: dict[str, Any]) -> None:
    """TakeControl / RelinquishControl (§12.4, §12.5): semaphoreName [0] ObjectName."""
    for tlv in ber.children(data, svc):
        if tlv.tag == 0:
            info["semaphore"] = object_name(data, ber.first(data, tlv))
            return


def _file_open_req(data: bytes, svc: Tlv, info: dict[str, Any]) -> None:
    """FileOpen-Request (ISO 9506-2 Annex D): fileName [0], initialPosition [1]."""
    for tlv in ber.children(data, svc):
        if tlv.tag == 0:
            info["file"] = _file_name(data, tlv)
        elif tlv.tag == 1:
            info["initial_position"] = ber.unsigned(data, tlv)


def _frsm_req(data: bytes, svc: Tlv, info: dict[str, Any]) -> None:
    """FileRead / FileClose request: the FRSM id (an implicit Integer32)."""
    info["frsm_id"] = ber.integer(data, svc)


def _file_delete_req(data: bytes, svc: Tlv, info: dict[str, Any]) -> None:
    """FileDelete-Request: a FileName (implicitly tagged SEQUENCE OF GraphicString)."""
    info["file"] = _file_name(data, svc)


def _file_rename_req(data: bytes, svc: Tlv, info: dict[str, Any]) -> None:
    """FileRename-Request: currentFileName [0], newFileName [1]."""
    parts = ber.by_tag(data, svc)
    if 0 in parts:
        info["file"] = _file_name(data, parts[0])
    if 1 in parts:
        info["new_file"] = _file_name(data, parts[1])


def _file_directory_req(data: bytes, svc: Tlv, info: dict[str, Any]) -> None:
    """FileDirectory-Request: fileSpecification [0], continueAfter [1]."""
    parts = ber.by_tag(data, svc)
    info["file"] = _file_name(data, parts[0]) if 0 in parts else ""
    if 1 in parts:
        info["continue_after"] = _file_name(data, parts[1])


def _obtain_file_req(data: bytes, svc: Tlv, info: dict[str, Any]) -> None:
    """ObtainFile-Request: sourceFileServer [0], sourceFile [1], destinationFile [2]."""
    parts = ber.by_tag(data, svc)
    if 1 in parts:
        info["source_file"] = _file_name(data, parts[1])
    if 2 in parts:
        info["file"] = _file_name(data, parts[2])


_REQUESTS: Final[dict[int, Decoder]] = {
    1: _get_name_list_req,
    4: _read_req,
    5: _write_req,
    6: _name_req,
    12: _name_req,
    19: _semaphore_req,
    20: _semaphore_req,
    26: _domain_req,
    29: _domain_req,
    32: _domain_req,
    33: _domain_req,
    34: _domain_req,
    35: _domain_req,
    36: _identifier_req,
    37: _identifier_req,
    39: _identifier_req,
    40: _program_req,
    41: _program_req,
    42: _program_req,
    43: _program_req,
    44: _program_req,
    45: _identifier_req,
    46: _obtain_file_req,
    72: _file_open_req,
    73: _frsm_req,
    74: _frsm_req,
    75: _file_rename_req,
    76: _file_delete_req,
    77: _file_directory_req,
}


# -- responses --------------------------------------------------------------------------
def _identify_res(data: bytes, svc: Tlv, info: dict[str, Any]) -> None:
    """Identify-Response (§10.2): vendorName [0], modelName [1], revision [2]."""
    for tlv in ber.children(data, svc):
        key = {0: "vendor", 1: "model", 2: "revision"}.get(tlv.tag)
        if key is not None and not tlv.constructed:
            info[key] = ber.text(data, tlv).strip()


def _read_res(data: bytes, svc: Tlv, info: dict[str, Any]) -> None:
    """Read-Response (§14.6): variableAccessSpecification [0], listOfAccessResult [1]."""
    for tlv in ber.children(data, svc):
        if tlv.tag == 1:
            _access_results(data, tlv, info)


def _write_res(data: bytes, svc: Tlv, info: dict[str, Any]) -> None:
    """Write-Response (§14.7): SEQUENCE OF { failure [0] DataAccessError, success [1] }."""
    failures: list[int] = []
    total = 0
    for tlv in ber.children(data, svc):
        total += 1
        if tlv.tag == 0:
            failures.append(ber.integer(data, tlv))
    info["result_count"] = total
    if failures:
        info["failures"] = failures


def _get_name_list_res(data: bytes, svc: Tlv, info: dict[str, Any]) -> None:
    """GetNameList-Response (§10.5): listOfIdentifier [0], moreFollows [1]."""
    for tlv in ber.children(data, svc):
        if tlv.tag == 0:
            names = [ber.text(data, t) for t in ber.children(data, tlv)]
            info["name_count"] = len(names)
            info["names"] = names[:MAX_NAMES]
        elif tlv.tag == 1:
            info["more_follows"] = ber.boolean(data, tlv)


def _file_open_res(data: bytes, svc: Tlv, info: dict[str, Any]) -> None:
    """FileOpen-Response: frsmID [0], fileAttributes [1] (sizeOfFile [0], ...)."""
    for tlv in ber.children(data, svc):
        if tlv.tag == 0:
            info["frsm_id"] = ber.integer(data, tlv)
        elif tlv.tag == 1:
            attrs = ber.by_tag(data, tlv)
            if 0 in attrs:
                info["file_size"] = ber.unsigned(data, attrs[0])


def _file_read_res(data: bytes, svc: Tlv, info: dict[str, Any]) -> None:
    """FileRead-Response: fileData [0], moreFollows [1]."""
    for tlv in ber.children(data, svc):
        if tlv.tag == 0:
            info["data_length"] = tlv.end - tlv.start
        elif tlv.tag == 1:
            info["more_follows"] = ber.boolean(data, tlv)


def _file_directory_res(data: bytes, svc: Tlv, info: dict[str, Any]) -> None:
    """FileDirectory-Response: listOfDirectoryEntry [0] (fileName [0], fileAttributes [1]),
    moreFollows [1]."""
    for tlv in ber.children(data, svc):
        if tlv.tag == 0:
            files: list[str] = []
            total = 0
            for entry in ber.children(data, tlv):
                total += 1
                parts = ber.by_tag(data, entry)
                if 0 in parts and len(files) < MAX_NAMES:
                    files.append(_file_name(data, parts[0]))
            info["files"] = files
            info["name_count"] = total
        elif tlv.tag == 1:
            info["more_follows"] = ber.boolean(data, tlv)


def _gvaa_res(data: bytes, svc: Tlv, info: dict[str, Any]) -> None:
    """GetVariableAccessAttributes-Response (§14.9): mmsDeletable [0], address [1],
    typeSpecification [2] (its choice kept, not walked)."""
    for tlv in ber.children(data, svc):
        if tlv.tag == 0:
            info["mms_deletable"] = ber.boolean(data, tlv)
        elif tlv.tag == 2 and tlv.constructed:
            spec = ber.first(data, tlv)
            info["type"] = {1: "array", 2: "structure"}.get(spec.tag, f"[{spec.tag}]")


_RESPONSES: Final[dict[int, Decoder]] = {
    1: _get_name_list_res,
    2: _identify_res,
    4: _read_res,
    5: _write_res,
    6: _gvaa_res,
    72: _file_open_res,
    73: _file_read_res,
    77: _file_directory_res,
}
