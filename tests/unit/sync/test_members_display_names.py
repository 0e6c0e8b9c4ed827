"""Display names from SCIM: stored as displayName, written once when they change, listed again every
SCIM_RELIST; SCIM pages at Miro's maximum of 1,000 users."""

from __future__ import annotations

from datetime import timedelta

from miro_sync.miro.models import ScimUser
from miro_sync.sync.members import SCIM_RELIST
from tests.unit.sync.fakes import FakeMiro, FakeScim
from tests.unit.sync.test_members_sync import World, org


def named_world(extra_scim_users: int = 0) -> World:
    people = org(30)
    internal = [m for m in people if m.role == "organization_internal_user"]
    users = {m.email: f"scim-{m.id}" for m in internal}
    names = {m.email: f"Ünïcode Person {m.id}" for m in internal}
    for index in range(extra_scim_users):  # SCIM users without an org member (makes pages)
        users[f"z{index:05d}@example.com"] = f"scim-z{index}"
    return World(miro=FakeMiro(people, teams={"t1": [people[0].id]}), scim=FakeScim(users, names=names))


def test_display_name_is_stored_and_written_once_when_it_changes() -> None:
    w = named_world()
    assert w.run().outcome == "complete"
    email = "user00000@example.com"
    assert w.members.items["00000"]["displayName"] == "Ünïcode Person 00000"
    assert "displayName" not in w.members.items["00009"]  # external: not in SCIM
    writes = w.members.update_requests + w.members.put_requests

    # A rename: the next full listing (SCIM_RELIST later) writes that member only.
    w.scim.names[email] = "Renamed Person"
    w.clock += SCIM_RELIST + timedelta(minutes=1)
    result = w.run()
    assert w.scim.listings == 2
    assert result.written == 1
    assert w.members.items["00000"]["displayName"] == "Renamed Person"

    # Nothing changed: nothing written, and within SCIM_RELIST SCIM is not listed again.
    w.clock += timedelta(hours=1)
    result = w.run()
    assert result.written == 0
    assert w.scim.listings == 2
    assert w.members.update_requests + w.members.put_requests > writes


def test_a_name_from_a_lookup_is_stored_for_a_new_member() -> None:
    w = named_world()
    assert w.run().outcome == "complete"
    newcomer = org(31)[30]
    w.miro.members.append(newcomer)
    w.scim.users[newcomer.email] = "scim-new"
    w.scim.names[newcomer.email] = "New Person"
    w.clock += timedelta(hours=1)
    assert w.run().outcome == "complete"
    assert w.scim.lookups == [newcomer.email]
    assert w.members.items[newcomer.id]["displayName"] == "New Person"


def test_scim_is_paged_at_1000_with_only_the_attributes_the_sync_reads() -> None:
    w = named_world(extra_scim_users=4500)
    assert w.run().outcome == "complete"
    total = len(w.scim.users)
    assert w.scim.pages_served == -(-total // 1000)  # 5 pages; 46 at the former 100
    assert set(w.scim.counts) == {1000}
    assert set(w.scim.attributes) == {("userName", "displayName", "name")}
    assert w.members.items["00001"]["scimId"] == "scim-00001"


def test_full_name_follows_miros_order() -> None:
    def user(**fields: object) -> ScimUser:
        return ScimUser.model_validate({"id": "1", "userName": "a@example.com", **fields})

    assert user(displayName="Ada L", name={"formatted": "Mrs Ada"}).full_name == "Ada L"
    assert user(displayName=" ", name={"formatted": "Mrs Ada"}).full_name == "Mrs Ada"
    assert user(name={"givenName": "Ada", "familyName": "Lovelace"}).full_name == "Ada Lovelace"
    assert user().full_name is None
