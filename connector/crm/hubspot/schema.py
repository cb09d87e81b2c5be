"""Init-properties and the startup check: property and group catalogues (with the stamps that
show a property was re-created), creating what is missing, and probing the events scope."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from connector.crm.hubspot.calls import (
    HubSpotCalls,
    _HttpError,
    _json_or_none,
    _read_raw,
    _results,
    log,
)
from connector.crm.hubspot.properties import (
    COMPANY_PROPERTY_DEFS,
    CONTACT_ACCOUNT_DEFS,
    GROUP,
    PRIORITY_PROPERTY,
    PROPERTY_DEFS,
    named_property_defs,
    priority_property,
)
from connector.errors import (
    AuthError,
    ConfigError,
    MissingPropertiesError,
    RetryableError,
)


def _so_far(created: Sequence[str]) -> str:
    return f" (created before it: {', '.join(created)})" if created else ""


def _snake(spec: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in spec.items():
        key = {"fieldType": "field_type", "groupName": "group_name"}.get(k, k)
        if key == "options":
            from hubspot.crm.properties import OptionInput

            v = [
                OptionInput(
                    label=o["label"],
                    value=o["value"],
                    display_order=o["displayOrder"],
                    hidden=o.get("hidden"),
                    description=o.get("description"),
                )
                for o in v
            ]
        out[key] = v
    return out


def _option(value: str, order: int, listed: Mapping[str, Any] | None) -> dict[str, Any]:
    """One option of a dropdown's new list: an existing one as HubSpot listed it (its label,
    hidden and description kept), a new one labelled with its value."""
    out: dict[str, Any] = {"label": value, "value": value, "displayOrder": order}
    if listed is not None:
        out["label"] = str(listed.get("label") or value)
        if isinstance(listed.get("hidden"), bool):
            out["hidden"] = listed["hidden"]
        if listed.get("description"):
            out["description"] = str(listed["description"])
    return out


class SchemaMixin(HubSpotCalls):
    """init-properties, check_properties, property stamps and the engagement probe."""

    # -- properties ---------------------------------------------------------------------------
    def _property_names(self, object_type: str = "contacts") -> set[str]:
        """The property names of `object_type`; for contacts, remembers when ours were created
        (`property_stamps`)."""
        data, _, _ = self._json_call(
            "properties.list",
            partial(
                self._props.get_all_with_http_info,
                object_type,
                _request_timeout=self.timeout_s,
                _preload_content=False,
            ),
        )
        listed = [p for p in _results(data, "properties") if isinstance(p, Mapping)]
        if object_type != "contacts":
            return {str(p.get("name")) for p in listed}
        dropdowns = self.priority_options_wanted()
        self._options = {}
        for p in listed:
            name = str(p.get("name"))
            options = p.get("options")
            if name in dropdowns and isinstance(options, list):  # none listed: not judged
                self._options[name] = [dict(o) for o in options if isinstance(o, Mapping)]
        # the account's properties whether account scoring is on or not: turning it off and on
        # again is no re-creation (those that exist keep their stamps)
        checked = self.checked_names(accounts=True)
        self._stamps = {
            checked[str(p.get("name"))]: str(p.get("createdAt") or "")
            for p in listed
            if str(p.get("name")) in checked
        }
        return {str(p.get("name")) for p in listed}

    def property_stamps(self, *, refresh: bool = False) -> dict[str, str]:
        """When each of our properties was created, by our names, as of the last properties
        list (`check_properties`; `refresh`: list them now, one call): a newer stamp means it
        was deleted and re-created, so it is empty on every contact."""
        if refresh or not self._stamps:
            self._property_names()
        return dict(self._stamps)

    def _group_names(self, object_type: str = "contacts") -> set[str]:
        groups, _, _ = self._json_call(
            "groups.list",
            partial(
                self._groups.get_all_with_http_info,
                object_type,
                _request_timeout=self.timeout_s,
                _preload_content=False,
            ),
        )
        return {str(g.get("name")) for g in _results(groups, "groups") if isinstance(g, Mapping)}

    def _contact_defs(self) -> list[dict[str, Any]]:
        """Our contact properties: the lifecycle score's, the account's (accounts on) and
        each named score's (`leadscore_<name>_score`, ...)."""
        return (
            PROPERTY_DEFS
            + (CONTACT_ACCOUNT_DEFS if self.accounts else [])
            + named_property_defs(
                self.named_scores, self.priority_labels, self.named_priority_labels
            )
        )

    def lacking_options(self) -> dict[str, list[str]]:
        """{priority dropdown: the labels the model writes that are no option of it}, for
        those the last properties list found (a missing property is missing, not this)."""
        out: dict[str, list[str]] = {}
        for name, labels in self.priority_options_wanted().items():
            listed = self._options.get(name)
            if listed is None:
                continue
            have = {str(o.get("value")) for o in listed}
            lacking = [v for v in labels if v not in have]
            if lacking:
                out[name] = lacking
        return out

    def ensure_properties(self) -> list[str]:
        created: list[str] = []
        contact_defs = self._contact_defs()
        self._ensure_for("contacts", contact_defs, created)
        self._add_options(created)
        if self.accounts:
            self._ensure_for("companies", COMPANY_PROPERTY_DEFS, created)
        return created

    def _ensure_for(
        self, object_type: str, defs: Sequence[Mapping[str, Any]], created: list[str]
    ) -> None:
        """Create the lead_scoring group and `defs` on `object_type` where missing."""
        from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate

        label = "" if object_type == "contacts" else "company "
        if GROUP not in self._group_names(object_type):
            body = PropertyGroupCreate(
                name=GROUP, label="Lead scoring (leadscore)", display_order=-1
            )
            create_group = partial(
                self._groups.create_with_http_info,
                object_type,
                body,
                _request_timeout=self.timeout_s,
                _preload_content=False,
            )
            checked = self._create_checked(
                "groups.create",
                f"{label}property group",
                GROUP,
                create_group,
                partial(self._group_names, object_type),
                created,
            )
            if checked:
                created.append(f"{label}group {GROUP}")
        existing = self._property_names(object_type)
        for spec in defs:
            if spec["name"] in existing:
                continue
            if spec["name"] == PRIORITY_PROPERTY:
                spec = priority_property(self.priority_labels)
            prop = PropertyCreate(group_name=GROUP, **_snake(spec))
            create = partial(
                self._props.create_with_http_info,
                object_type,
                prop,
                _request_timeout=self.timeout_s,
                _preload_content=False,
            )
            checked = self._create_checked(
                "properties.create",
                f"{label}property",
                spec["name"],
                create,
                partial(self._property_names, object_type),
                created,
            )
            if checked:
                created.append(f"{label}{spec['name']}")

    def _add_options(self, created: list[str]) -> None:
        """Give each existing priority dropdown the labels the model writes that it lacks
        (bands renamed, or a named score's own): the model's labels in its order, then the
        options it had and the model no longer writes, kept (contacts may still hold them
        until rescored). One PATCH a dropdown; `created` names what was added."""
        from hubspot.crm.properties import PropertyUpdate

        wanted_of = self.priority_options_wanted()
        for name, lacking in self.lacking_options().items():
            wanted = wanted_of[name]
            old = {str(o.get("value")): o for o in self._options[name]}
            values = [*wanted, *(v for v in old if v not in wanted)]
            options = [_option(v, i, old.get(v)) for i, v in enumerate(values)]
            body = PropertyUpdate(**_snake({"options": options}))
            update = partial(
                self._props.update_with_http_info,
                "contacts",
                name,
                body,
                _request_timeout=self.timeout_s,
                _preload_content=False,
            )
            try:
                self._call("properties.update", partial(_read_raw, update))
            except _HttpError as exc:
                raise ConfigError(
                    f"cannot add the options {', '.join(lacking)} to property {name}: "
                    f"{exc}{_so_far(created)}"
                ) from None
            except RetryableError as exc:
                raise RetryableError(
                    f"cannot add the options {', '.join(lacking)} to property {name}: "
                    f"{exc}{_so_far(created)}"
                ) from None
            self._options[name] = options
            created.append(f"options {', '.join(lacking)} of {name}")

    def _create_checked(
        self,
        kind: str,
        what: str,
        name: str,
        create: Callable[[], Any],
        read_back: Callable[[], set[str]],
        created: Sequence[str],
    ) -> bool:
        """Create `name`: True once HubSpot's answer (a JSON object with that name) or, failing
        that, a read-back of the list shows it exists; False on 409 (it existed already).
        Anything else (an error, a 200 carrying a proxy's HTML page and no such object) is a
        ConfigError naming it: a property is never reported created on a status code alone."""
        try:
            raw, status, headers = self._call(kind, partial(_read_raw, create))
        except _HttpError as exc:
            if exc.status == 409:
                return False
            raise ConfigError(f"cannot create {what} {name}: {exc}{_so_far(created)}") from None
        except RetryableError as exc:  # retries spent (5xx, timeouts): say which one
            raise RetryableError(f"cannot create {what} {name}: {exc}{_so_far(created)}") from None
        answer = _json_or_none(raw.decode("utf-8", "replace"))
        if isinstance(answer, Mapping) and answer.get("name") == name:
            return True
        if name in read_back():
            log.info("hubspot %s: answer did not show %s, the list read back does", kind, name)
            return True
        ctype = headers.get("content-type") or headers.get("Content-Type") or "no content type"
        raise ConfigError(
            f"cannot create {what} {name}: HubSpot answered HTTP {status} with {ctype} "
            f"({len(raw)} bytes), not the {what}, and it is not in the list read back "
            f"(a proxy or firewall page?){_so_far(created)}"
        )

    def check_properties(self) -> None:
        names = self._property_names()
        wanted = self._contact_defs()
        missing = sorted({p["name"] for p in wanted} - names)
        if self.accounts:
            company_names = self._property_names("companies")
            missing += sorted(
                f"companies.{p['name']}"
                for p in COMPANY_PROPERTY_DEFS
                if p["name"] not in company_names
            )
        if missing:
            raise MissingPropertiesError(
                "HubSpot portal lacks properties "
                + ", ".join(missing)
                + ": run `leadscore init-properties` first (with `--model PATH` for a model "
                "not yet in force)",
                missing,
                "run `leadscore init-properties`",
            )
        lacking = self.lacking_options()
        if lacking:
            what = "HubSpot " + "; ".join(
                f"property {name} lacks the options {', '.join(values)}"
                for name, values in lacking.items()
            )
            raise MissingPropertiesError(
                what + " (the model's priority labels; HubSpot refuses a value that is no "
                "option of its dropdown): run `leadscore init-properties` to add them",
                [f"{name} (options {', '.join(values)})" for name, values in lacking.items()],
                "run `leadscore init-properties`",
                dry_note=what + ": run `leadscore init-properties` to add them before a real sync",
            )
        self.probe_engagement()
        absent = sorted(set(self.extra_properties) - names)
        if absent:
            raise MissingPropertiesError(
                "HubSpot portal lacks the properties company write-back needs: "
                + ", ".join(absent)
                + " (create them, or set LEADSCORE_WRITE_COMPANY_FIELDS=false)",
                absent,
                "create them, or set LEADSCORE_WRITE_COMPANY_FIELDS=false,",
            )

    def probe_engagement(self) -> bool:
        """Ask the events API for one event; 403/404 (not on the plan, or the token lacks the
        scope) switches engagement to the roll-up properties. Returns True in roll-up mode."""
        if self._probed:
            return self.rollups
        try:
            self._json_call(  # raw JSON: one malformed event must not fail the probe
                "events.probe",
                partial(
                    self._events.get_page_with_http_info,
                    object_type="contact",
                    limit=1,
                    _request_timeout=self.timeout_s,
                    _preload_content=False,
                ),
            )
        except (_HttpError, AuthError) as exc:
            status = exc.status if isinstance(exc, _HttpError) else 403
            if isinstance(exc, AuthError) and exc.category != "MISSING_SCOPES":
                raise  # a refused token stops the run; a missing scope is a plan limit
            if status not in (403, 404):
                raise
            log.warning(
                "HubSpot events API unavailable (HTTP %s): scoring engagement from roll-up "
                "properties (page view counts, conversions, e-mail opt-out)",
                status,
            )
            self.rollups = True
        self._probed = True
        return self.rollups
