"""Validate a create-or-update body and apply it to a stored customer, as far as myKaarma's docs go.

Where the docs are silent the sandbox chooses, and says so here:
- A present `phoneNumbers`/`emails`/`addresses` list replaces the stored one; an absent key keeps it;
  an empty list or null deletes them all (warnings 10005 / 10006), as the docs warn.
- A phone that is not E.164 is not stored (warning 10015); if none of a non-empty list is usable the
  stored phones are kept (warning 10013). Emails likewise (10012 for an empty one, 10014 for none usable).
- Vehicles are merged into the customer's by VIN (or by year, make and model when a vehicle has no VIN);
  a vehicle is never deleted by omission. With `validateVin`, an invalid VIN is rejected with warning
  10017 INVALID_VIN (a code the sandbox invents: the docs list none).
- Scalar fields that are absent or null keep their stored value.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from importer.prepare.vin import is_valid_vin

E164 = re.compile(r"\+[1-9]\d{7,14}")
_STRING_FIELDS = ("customerKey", "firstName", "middleName", "lastName", "company", "preferredLocale",
                  "customerUuid", "preferredCommunication")
_VEHICLE_FIELDS = ("vin", "vehicleYear", "vehicleMake", "vehicleModel", "estimatedMileage", "vehicleKey",
                   "vehicleTrim", "licensePlate", "color", "vehicleUuid", "vehicleEngine")
_LISTS = {
    "addresses": ("line1", "line2", "city", "state", "zip", "country", "type", "addressType"),
    "emails": ("emailAddress", "label"),
    "phoneNumbers": ("phoneNumber", "label"),
}
_FLAGS = {
    "addresses": ("isValid", "isPreferred"),
    "emails": ("okToEmail", "isPreferred"),
    "phoneNumbers": ("okToCall", "okToText", "isPreferred"),
}


class BadRequest(Exception):
    """The body is not a well-formed create-or-update request."""

    def __init__(self, code: str, title: str, message: str) -> None:
        super().__init__(message)
        self.error = {"errorCode": code, "errorTitle": title, "errorMessage": message}


def message(code: str, title: str, text: str, kind: str = "warning") -> dict[str, str]:
    return {f"{kind}Code": code, f"{kind}Title": title, f"{kind}Message": text}


def _check_object(value: Any, where: str, strings: tuple[str, ...], flags: tuple[str, ...]) -> None:
    if not isinstance(value, dict):
        raise BadRequest("400002", "INVALID_FIELD_TYPE", f"{where} must be an object")
    for name in strings:
        if value.get(name) is not None and not isinstance(value[name], str):
            raise BadRequest("400002", "INVALID_FIELD_TYPE", f"{where}.{name} must be a string")
    for name in flags:
        if value.get(name) is not None and not isinstance(value[name], bool):
            raise BadRequest("400002", "INVALID_FIELD_TYPE", f"{where}.{name} must be a boolean")


def parse_body(body: Any) -> tuple[dict[str, Any], list[dict[str, Any]], bool, bool]:
    """(customer, vehicles, validateVin, searchForDuplicate) of a request body, or BadRequest."""
    if not isinstance(body, dict) or not isinstance(body.get("customer"), dict):
        raise BadRequest("400001", "MISSING_CUSTOMER", "the body must be an object with a customer object")
    customer = body["customer"]
    _check_object(customer, "customer", _STRING_FIELDS, ("isBusiness",))
    for name, strings in _LISTS.items():
        items = customer.get(name)
        if items is not None and not isinstance(items, list):
            raise BadRequest("400002", "INVALID_FIELD_TYPE", f"customer.{name} must be a list")
        for i, item in enumerate(items or []):
            _check_object(item, f"customer.{name}[{i}]", strings, _FLAGS[name])
    vehicles = body.get("vehicles") or []
    if not isinstance(vehicles, list):
        raise BadRequest("400002", "INVALID_FIELD_TYPE", "vehicles must be a list")
    for i, vehicle in enumerate(vehicles):
        _check_object(vehicle, f"vehicles[{i}]", _VEHICLE_FIELDS, ("isValid",))
    flags = []
    for name in ("validateVin", "searchForDuplicate"):
        if body.get(name) is not None and not isinstance(body[name], bool):
            raise BadRequest("400002", "INVALID_FIELD_TYPE", f"{name} must be a boolean")
        flags.append(bool(body.get(name)))
    if customer.get("isBusiness"):
        if not (customer.get("company") or "").strip():
            raise BadRequest("400003", "MISSING_COMPANY", "a business customer needs a company")
    elif not (customer.get("lastName") or "").strip() and not (customer.get("firstName") or "").strip():
        raise BadRequest("400004", "MISSING_NAME", "a customer needs a first or last name")
    return customer, vehicles, flags[0], flags[1]


@dataclass(frozen=True)
class _ContactRules:
    """How one contact list (phones or emails) is checked, and the warnings the API gives about it."""

    field: str
    clean: Callable[[str], str]
    valid: Callable[[str], bool]
    deleted: tuple[str, str, str]
    empty: tuple[str, str, str]
    invalid: tuple[str, str, str]
    none_valid: tuple[str, str, str]


_PHONE_RULES = _ContactRules(
    "phoneNumber", str.strip, lambda n: bool(E164.fullmatch(n)),
    ("10005", "DELETED_ALL_PHONE_NUMBERS", "Phone list is null or empty hence all phone numbers have been deleted"),
    ("10011", "EMPTY_PHONE_NUMBER", "Phone number is empty"),
    ("10015", "INCORRECT_PHONE_FORMAT", "Phone Number should be of the form +1310xxxxxxx"),
    ("10013", "NO_VALID_PHONE_FOUND", "No valid phone number found"))
_EMAIL_RULES = _ContactRules(
    "emailAddress", lambda e: e.strip().lower(), lambda e: "@" in e,
    ("10006", "DELETED_ALL_EMAILS", "Email list is null or empty hence all emails have been deleted"),
    ("10012", "EMPTY_EMAIL", "Email address is empty"),
    ("10014", "NO_VALID_EMAIL_FOUND", "Invalid email address"),
    ("10014", "NO_VALID_EMAIL_FOUND", "No valid email found"))


def _merge_contacts(stored: list[Any], given: Any, rules: _ContactRules,
                    warnings: list[dict[str, str]]) -> list[Any]:
    if not given:
        warnings.append(message(*rules.deleted))
        return []
    kept = []
    for contact in given:
        value = rules.clean(contact.get(rules.field) or "")
        if not value:
            warnings.append(message(*rules.empty))
        elif not rules.valid(value):
            warnings.append(message(*rules.invalid))
        else:
            kept.append({**contact, rules.field: value})
    if not kept:
        warnings.append(message(*rules.none_valid))
        return stored
    return kept


def _vehicle_identity(vehicle: dict[str, Any]) -> tuple[str, ...]:
    if vehicle.get("vin"):
        return ("vin", vehicle["vin"].upper())
    return ("ymm", *(str(vehicle.get(k) or "").casefold() for k in ("vehicleYear", "vehicleMake", "vehicleModel")))


def _merge_vehicles(stored: list[dict[str, Any]], given: list[dict[str, Any]], validate_vin: bool,
                    warnings: list[dict[str, str]]) -> list[dict[str, Any]]:
    merged = {_vehicle_identity(v): v for v in stored}
    for vehicle in given:
        vin = (vehicle.get("vin") or "").strip().upper()
        if vin and validate_vin and not is_valid_vin(vin):
            warnings.append(message("10017", "INVALID_VIN", f"Vehicle with invalid VIN {vin} rejected"))
            continue
        if not vin and not all(vehicle.get(k) for k in ("vehicleYear", "vehicleMake", "vehicleModel")):
            warnings.append(message("10018", "INCOMPLETE_VEHICLE",
                                    "A vehicle needs a VIN, or a year, make and model"))
            continue
        clean = {k: v for k, v in vehicle.items() if k in _VEHICLE_FIELDS or k == "isValid"}
        if vin:
            clean["vin"] = vin
        identity = _vehicle_identity(clean)
        previous = merged.get(identity, {})
        merged[identity] = {**previous, **clean,
                            "vehicleUuid": previous.get("vehicleUuid") or str(uuid.uuid4())}
    return list(merged.values())


def apply_request(existing: dict[str, Any] | None, customer: dict[str, Any],
                  vehicles: list[dict[str, Any]], validate_vin: bool) -> tuple[dict[str, Any], list[Any]]:
    """The customer record after this request, and the warnings the request earns."""
    warnings: list[dict[str, str]] = []
    record: dict[str, Any] = dict(existing) if existing else {
        "phoneNumbers": [], "emails": [], "addresses": [], "vehicles": []}
    for name in (*_STRING_FIELDS, "isBusiness"):
        if name != "customerUuid" and customer.get(name) is not None:
            record[name] = customer[name]
    if "phoneNumbers" in customer:
        record["phoneNumbers"] = _merge_contacts(record["phoneNumbers"], customer["phoneNumbers"], _PHONE_RULES,
                                                 warnings)
    if "emails" in customer:
        record["emails"] = _merge_contacts(record["emails"], customer["emails"], _EMAIL_RULES, warnings)
    if "addresses" in customer:
        record["addresses"] = list(customer["addresses"] or [])
    record["vehicles"] = _merge_vehicles(record["vehicles"], vehicles, validate_vin, warnings)
    return record, warnings
