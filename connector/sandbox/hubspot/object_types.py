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
    singular: str = ""  # also accepted in association paths: "contact"
    last_modified: str = "lastmodifieddate"  # the property every write stamps

    @property
    def aliases(self) -> tuple[str, ...]:
        return (self.name, self.type_id)

    @property
    def association_aliases(self) -> tuple[str, ...]:
        """What the associations v4 paths accept: the plural, the singular and the type id."""
        return (self.name, self.singular, self.type_id) if self.singular else self.aliases

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
    singular="contact",
)
COMPANY_DEFAULT_READ: tuple[str, ...] = (
    "createdate",
    "domain",
    "hs_lastmodifieddate",
    "hs_object_id",
    "name",
)
COMPANIES = ObjectType(
    name="companies",
    type_id="0-2",
    label="COMPANY",
    default_read=COMPANY_DEFAULT_READ,
    always_returned=("createdate", "hs_lastmodifieddate", "hs_object_id"),
    searchable_by_query=("name", "domain", "hs_additional_domains", "website", "phone"),
    unique_properties=(),
    singular="company",
    last_modified="hs_lastmodifieddate",
)
OBJECT_TYPES: tuple[ObjectType, ...] = (CONTACTS, COMPANIES)
_BY_ALIAS = {alias: ot for ot in OBJECT_TYPES for alias in ot.aliases}
_BY_ASSOCIATION_ALIAS = {alias: ot for ot in OBJECT_TYPES for alias in ot.association_aliases}
# the path segment naming an object type, as a named group of the route table
OBJECT_TYPE_GROUP = "(?P<object>" + "|".join(_BY_ALIAS) + ")"


def object_type(m: Mapping[str, str]) -> ObjectType:
    """The object type a routed path names (``contacts`` and ``0-1`` are the same)."""
    return _BY_ALIAS[m["object"]]


def association_object_type(name: str) -> ObjectType | None:
    """An object type as the associations API names it (``companies``, ``company``, ``0-2``)."""
    return _BY_ASSOCIATION_ALIAS.get(name.lower())


@dataclass(frozen=True)
class AssociationType:
    """One HUBSPOT_DEFINED association type between two declared object types."""

    from_type: str  # object type names: "contacts"
    to_type: str
    type_id: int
    label: str | None  # None: the unlabeled (default) type
    inverse: int  # the type id of the same association seen from the other side
    primary: bool = False
    category: str = "HUBSPOT_DEFINED"


ASSOCIATION_TYPES: tuple[AssociationType, ...] = (
    AssociationType("contacts", "companies", 279, None, 280),
    AssociationType("contacts", "companies", 1, "Primary", 2, primary=True),
    AssociationType("companies", "contacts", 280, None, 279),
    AssociationType("companies", "contacts", 2, "Primary", 1, primary=True),
)


def association_types(from_type: str, to_type: str) -> dict[int, AssociationType]:
    """The association types from one object type to another, by type id."""
    return {
        a.type_id: a for a in ASSOCIATION_TYPES if (a.from_type, a.to_type) == (from_type, to_type)
    }


def unlabeled_type(from_type: str, to_type: str) -> AssociationType | None:
    for a in association_types(from_type, to_type).values():
        if a.label is None:
            return a
    return None
