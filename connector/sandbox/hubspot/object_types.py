"""The object types the CRM objects API serves, as declarations (see ``objects``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Returned when a read does not name any property.
DEFAULT_READ_PROPERTIES: tuple[str, ...] = (
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
    "lastname",
)
# Always returned in addition to the requested properties.
ALWAYS_RETURNED: tuple[str, ...] = ("createdate", "hs_object_id", "lastmodifieddate")
SEARCHABLE_BY_QUERY: tuple[str, ...] = (
    "email",
    "firstname",
    "lastname",
    "phone",
    "company",
    "hs_additional_emails",
)


@dataclass(frozen=True)
class ObjectType:
    """One object type of the CRM objects API, as a declaration."""

    name: str  # the plural in paths: "contacts"
    type_id: str  # HubSpot's id for it, also accepted in paths: "0-1"
    label: str  # in messages: "CONTACT"
    default_read: tuple[str, ...]  # returned when a read names no property
    always_returned: tuple[str, ...]  # returned in addition to the named properties
    searchable_by_query: tuple[str, ...]  # what a search "query" looks in
    unique_properties: tuple[str, ...]  # valid idProperty values besides hs_object_id

    @property
    def aliases(self) -> tuple[str, ...]:
        return (self.name, self.type_id)

    @property
    def id_properties(self) -> tuple[str | None, ...]:
        return (None, "hs_object_id", *self.unique_properties)


CONTACTS = ObjectType(
    name="contacts",
    type_id="0-1",
    label="CONTACT",
    default_read=DEFAULT_READ_PROPERTIES,
    always_returned=ALWAYS_RETURNED,
    searchable_by_query=SEARCHABLE_BY_QUERY,
    unique_properties=("email",),
)
OBJECT_TYPES: tuple[ObjectType, ...] = (CONTACTS,)
_BY_ALIAS = {alias: ot for ot in OBJECT_TYPES for alias in ot.aliases}
# the path segment naming an object type, as a named group of the route table
OBJECT_TYPE_GROUP = "(?P<object>" + "|".join(_BY_ALIAS) + ")"


def object_type(m: Mapping[str, str]) -> ObjectType:
    """The object type a routed path names (``contacts`` and ``0-1`` are the same)."""
    return _BY_ALIAS[m["object"]]
