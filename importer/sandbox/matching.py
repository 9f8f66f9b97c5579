"""The Customer Matching Logic that `searchForDuplicate: true` runs, as myKaarma's docs describe it.

1. Candidates: customers sharing a communication value (E.164 phone, lower-cased email) with the input,
   plus customers owning one of the input's VINs.
2. Keep the candidates whose name matches the input's: first and last name for a person, company for a
   business, compared trimmed and case-insensitively. None left: no match (a new customer is created).
   One left: that one.
3. Keep the candidates with the input's `customerKey`. One left: that one. None left: this step is
   skipped and the list of step 2 kept.
4. Keep the candidates that match on both a communication value and a VIN.

The docs leave what follows step 4 to a diagram. This sandbox chooses: of the candidates step 4 kept (or,
if it kept none, those that entered it), the one updated most recently; ties go to the oldest customer.
So several look-alike customers never cause a new one to be created, and the choice is reproducible.

Consequence (the docs' own): a customer with no phone, email or VIN is never found again.
"""

from __future__ import annotations

from typing import Any

from importer.sandbox.store import Customer, CustomerStore, comm_values, vins_of


def _same_name(candidate: Customer, customer: dict[str, Any]) -> bool:
    def norm(value: Any) -> str:
        return str(value or "").strip().casefold()

    if customer.get("isBusiness"):
        return bool(norm(customer.get("company"))) and norm(candidate.get("company")) == norm(
            customer.get("company")
        )
    return (norm(candidate.get("firstName")), norm(candidate.get("lastName"))) == (
        norm(customer.get("firstName")),
        norm(customer.get("lastName")),
    )


def find_duplicate(
    store: CustomerStore, department: str, customer: dict[str, Any], vehicles: list[dict[str, Any]]
) -> Customer | None:
    """The existing customer that the input customer is a duplicate of, if the logic finds one."""
    by_comm = store.with_comms(department, comm_values(customer))
    by_vin = store.with_vins(department, vins_of(vehicles))
    candidates = [store.get(department, uid) for uid in sorted(by_comm | by_vin)]
    named = [c for c in candidates if c is not None and _same_name(c, customer)]
    if len(named) <= 1:
        return named[0] if named else None
    key = customer.get("customerKey")
    keyed = [c for c in named if key and c.get("customerKey") == key]
    if len(keyed) == 1:
        return keyed[0]
    remaining = keyed or named
    both = [c for c in remaining if c["customerUuid"] in by_comm and c["customerUuid"] in by_vin]
    pool = both or remaining
    return max(pool, key=lambda c: (c["updatedSeq"], -int(c["customerId"])))
