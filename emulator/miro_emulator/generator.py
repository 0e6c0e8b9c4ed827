"""Builds a realistic org from (members, seed, now): same inputs, same org."""

from __future__ import annotations

import bisect
import random
from array import array
from base64 import urlsafe_b64encode

from miro_emulator.audit import EVENT_TYPE_INDEX, NO_INDEX
from miro_emulator.config import Clock, EmulatorConfig, to_ms
from miro_emulator.state import (
    ADMIN,
    EXTERNAL_USER,
    INTERNAL_USER,
    SCIM_VISIBLE_ROLES,
    TEAM_GUEST,
    Board,
    Member,
    OrgState,
    Team,
    TeamMembership,
)

DAY_MS = 86_400_000
AUDIT_HISTORY_DAYS = 100
MEMBER_ID_BASE = 3_458_764_510_000_000_000
SCIM_ID_BASE = 3_074_457_350_000_000_000
TEAM_ID_BASE = 3_458_764_520_000_000_000

GIVEN_NAMES = (
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Frances",
    "Edsger",
    "Radia",
    "Tim",
    "Hedy",
    "John",
    "Katherine",
    "Donald",
    "Sophie",
    "Guido",
    "Anita",
    "Bjarne",
    "Mary",
    "Niklaus",
    "Shafi",
    "Leslie",
    "Joan",
    "Yukihiro",
    "Carol",
    "Brian",
    "Annie",
    "Whitfield",
    "Elena",
    "Kai",
)
FAMILY_NAMES = (
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Allen",
    "Dijkstra",
    "Perlman",
    "Berners-Lee",
    "Lamarr",
    "McCarthy",
    "Johnson",
    "Knuth",
    "Wilson",
    "Rossum",
    "Borg",
    "Stroustrup",
    "Shaw",
    "Wirth",
    "Goldwasser",
    "Lamport",
    "Clarke",
    "Matsumoto",
    "Shaw",
    "Kernighan",
    "Easley",
    "Diffie",
    "Garcia",
    "Nakamura",
)
TEAM_NAMES = (
    "Engineering",
    "Design",
    "Marketing",
    "Sales",
    "Customer Success",
    "Finance",
    "People",
    "Legal",
    "Product",
    "Data",
    "Security",
    "IT",
    "Operations",
    "Research",
    "Partnerships",
    "Support",
)
BOARD_TOPICS = (
    "Roadmap",
    "Retro",
    "Brainstorm",
    "User journey",
    "Sprint planning",
    "Org chart",
    "Kickoff",
    "OKRs",
    "Architecture",
    "Wireframes",
    "Customer map",
    "Workshop",
    "Backlog",
    "Incident review",
    "Onboarding",
)
ADMIN_ROLE_NAMES = ("Content Admin", "User Admin", "Security Admin")
COMPANY_DOMAIN = "acme.example"
EXTERNAL_DOMAINS = ("agency.example", "partner.example", "freelance.example", "vendor.example")


def build_org(config: EmulatorConfig, clock: Clock) -> OrgState:
    state = OrgState(config, clock)
    rng = random.Random(config.seed)
    now_ms = to_ms(clock.start)
    _add_members(state, rng, config.members, now_ms)
    _add_teams(state, rng, now_ms)
    _add_boards(state, rng, now_ms)
    _add_audit_events(state, rng, config.audit_event_count, now_ms)
    return state


def _pick_role(rng: random.Random, index: int) -> str:
    if index == 0:
        return ADMIN  # the token owner: every org has at least one admin
    roll = rng.random()
    if roll < 0.03:
        return ADMIN
    if roll < 0.83:
        return INTERNAL_USER
    if roll < 0.93:
        return EXTERNAL_USER
    return TEAM_GUEST


def _pick_license(rng: random.Random, role: str) -> str:
    roll = rng.random()
    if role == ADMIN:
        return "full"
    if role == INTERNAL_USER:
        if roll < 0.55:
            return "full"
        if roll < 0.70:
            return "occasional"
        if roll < 0.85:
            return "free"
        if roll < 0.90:
            return "free_restricted"
        return "full_trial"
    if role == EXTERNAL_USER:
        return "free" if roll < 0.6 else ("free_restricted" if roll < 0.9 else "occasional")
    return "free_restricted"


def _pick_last_activity(rng: random.Random, now_ms: int, created_ms: int) -> int | None:
    roll = rng.random()
    if roll < 0.06:
        return None  # invited, never signed in
    if roll < 0.70:
        days = rng.uniform(0, 30)
    elif roll < 0.82:
        days = rng.uniform(30, 90)
    else:
        days = rng.uniform(90, 400)  # the long tail of seats nobody uses
    return max(created_ms, now_ms - int(days * DAY_MS))


def _add_members(state: OrgState, rng: random.Random, count: int, now_ms: int) -> None:
    # Spread member ids so they look like Miro's 19-digit ids but stay sortable by creation.
    for index in range(count):
        role = _pick_role(rng, index)
        given = GIVEN_NAMES[rng.randrange(len(GIVEN_NAMES))]
        family = FAMILY_NAMES[rng.randrange(len(FAMILY_NAMES))]
        domain = (
            COMPANY_DOMAIN if role in SCIM_VISIBLE_ROLES else EXTERNAL_DOMAINS[index % len(EXTERNAL_DOMAINS)]
        )
        email = f"{given}.{family}.{index}@{domain}".lower()
        created_ms = now_ms - int(rng.uniform(5, 1500) * DAY_MS)
        last_activity = _pick_last_activity(rng, now_ms, created_ms)
        active = index == 0 or rng.random() >= 0.05
        admin_roles = (ADMIN_ROLE_NAMES[rng.randrange(len(ADMIN_ROLE_NAMES))],) if role == ADMIN else ()
        member = Member(
            index=index,
            id=str(MEMBER_ID_BASE + index * 7919 + rng.randrange(7919)),
            email=email,
            given_name=given,
            family_name=family,
            role=role,
            license=_pick_license(rng, role),
            active=active,
            last_activity_ms=now_ms - 3_600_000 if index == 0 else last_activity,
            license_assigned_ms=created_ms + int(rng.uniform(0, 2) * DAY_MS),
            created_ms=created_ms,
            scim_id=str(SCIM_ID_BASE + index * 104_729 + 17) if role in SCIM_VISIBLE_ROLES else None,
            admin_roles=admin_roles,
        )
        state.all_members.append(member)
        state.members_by_id[member.id] = member
        state.members_by_email[member.email] = member
        if member.scim_id is not None:
            state.members_by_scim_id[member.scim_id] = member
    state.member_ids = sorted(state.members_by_id)
    state.scim_order = sorted(
        (m.index for m in state.all_members if m.scim_id is not None),
        key=lambda index: int(state.all_members[index].scim_id or 0),
    )


def _add_teams(state: OrgState, rng: random.Random, now_ms: int) -> None:
    members = state.all_members
    team_count = max(3, len(members) // 25)
    for index in range(team_count):
        base = TEAM_NAMES[index % len(TEAM_NAMES)]
        name = base if index < len(TEAM_NAMES) else f"{base} {index // len(TEAM_NAMES) + 1}"
        team = Team(
            index=index,
            id=str(TEAM_ID_BASE + index * 6151 + 3),
            name=name,
            created_ms=now_ms - int(rng.uniform(400, 1600) * DAY_MS),
        )
        state.teams.append(team)
        state.teams_by_id[team.id] = team
    internal = [m for m in members if m.role in SCIM_VISIBLE_ROLES]
    # Each team gets an internal admin first, so "the oldest team admin" always exists.
    for team in state.teams:
        founder = internal[rng.randrange(len(internal))]
        _join(team, founder, "admin", team.created_ms, members[0].id)
    for member in members:
        teams_for_member = 1 if member.role == TEAM_GUEST else rng.choice((1, 1, 1, 2, 2, 3))
        for _ in range(teams_for_member):
            team = state.teams[rng.randrange(team_count)]
            if member.index in team.memberships:
                continue
            if member.role == EXTERNAL_USER:
                role = "non_team"
            elif member.role == TEAM_GUEST:
                role = "member"
            else:
                role = "admin" if rng.random() < 0.05 else "member"
            joined = max(team.created_ms, member.created_ms) + int(rng.uniform(0, 3) * DAY_MS)
            _join(team, member, role, joined, members[0].id)
        if member.primary_team == NO_INDEX:
            member.primary_team = state.teams[0].index
            _join(
                state.teams[0],
                member,
                "member" if member.role != EXTERNAL_USER else "non_team",
                member.created_ms,
                members[0].id,
            )


def _join(team: Team, member: Member, role: str, joined_ms: int, invited_by: str) -> None:
    if member.index in team.memberships:
        return
    team.memberships[member.index] = TeamMembership(member.index, role, joined_ms, invited_by)
    if member.primary_team == NO_INDEX:
        member.primary_team = team.index


def _add_boards(state: OrgState, rng: random.Random, now_ms: int) -> None:
    owners = [m for m in state.all_members if m.role in (ADMIN, INTERNAL_USER)]
    board_count = max(5, int(len(state.all_members) * 0.8))
    for index in range(board_count):
        owner = owners[rng.randrange(len(owners))] if rng.random() < 0.85 else owners[index % len(owners)]
        created_ms = max(owner.created_ms, now_ms - int(rng.uniform(1, 900) * DAY_MS))
        raw_id = (index + 1).to_bytes(7, "big")
        board = Board(
            index=index,
            id="uXjV" + urlsafe_b64encode(raw_id + b"\x00").decode()[:-1] + "=",
            name=f"{BOARD_TOPICS[rng.randrange(len(BOARD_TOPICS))]} #{index + 1}",
            description="",
            team_index=owner.primary_team,
            owner_index=owner.index,
            created_by_index=owner.index,
            created_ms=created_ms,
            modified_ms=min(now_ms, created_ms + int(rng.uniform(0, 60) * DAY_MS)),
        )
        state.boards.append(board)
        state.boards_by_id[board.id] = board


def _add_audit_events(state: OrgState, rng: random.Random, count: int, now_ms: int) -> None:
    """Events over the last 100 days, never after their actor's lastActivityAt."""
    start_ms = now_ms - AUDIT_HISTORY_DAYS * DAY_MS
    members = state.all_members
    boards = state.boards
    actors = [m for m in members if m.last_activity_ms is not None and m.last_activity_ms > start_ms]
    if not actors or count == 0:
        return
    last_seen = [m.last_activity_ms or 0 for m in actors]
    times = array("q")
    kinds = array("b")
    who = array("i")
    what = array("i")
    sign_in = EVENT_TYPE_INDEX["sign_in_succeeded"]
    # Every actor's latest sign-in, so "last sign-in" from the audit log lines up with lastActivityAt.
    for member in actors:
        times.append(member.last_activity_ms or start_ms)
        kinds.append(sign_in)
        who.append(member.index)
        what.append(member.index)
    weighted_kinds = [
        (EVENT_TYPE_INDEX["sign_in_succeeded"], 0.30),
        (EVENT_TYPE_INDEX["sign_in_failed"], 0.03),
        (EVENT_TYPE_INDEX["board_opened"], 0.50),
        (EVENT_TYPE_INDEX["board_created"], 0.07),
        (EVENT_TYPE_INDEX["board_shared"], 0.10),
    ]
    kind_values = [kind for kind, _ in weighted_kinds]
    cumulative = []
    running = 0.0
    for _, weight in weighted_kinds:
        running += weight
        cumulative.append(running)
    span = now_ms - start_ms
    actor_count = len(actors)
    board_count = len(boards)
    random_ = rng.random
    first_board_kind = EVENT_TYPE_INDEX["board_opened"]
    # Hot loop (a million iterations at 100k members): int(random() * n) instead of randrange and a
    # bisect over cumulative weights keep generation at a few seconds.
    for _ in range(max(0, count - len(times))):
        created = start_ms + int(random_() * span)
        actor_position = int(random_() * actor_count)
        if last_seen[actor_position] < created:
            actor_position = int(random_() * actor_count)
            if last_seen[actor_position] < created:
                created = last_seen[actor_position]
        kind = kind_values[bisect.bisect_right(cumulative, random_() * running)]
        actor_index = actors[actor_position].index
        times.append(created)
        kinds.append(kind)
        who.append(actor_index)
        what.append(int(random_() * board_count) if kind >= first_board_kind else actor_index)
    # Deactivated members: one deactivation event by the SCIM provisioner, inside the window.
    deactivate = EVENT_TYPE_INDEX["user_deactivated"]
    for member in members:
        if not member.active:
            times.append(start_ms + int(rng.random() * span))
            kinds.append(deactivate)
            who.append(NO_INDEX)
            what.append(member.index)
    order = sorted(range(len(times)), key=times.__getitem__)
    audit = state.audit
    for position in order:
        actor = who[position]
        team = members[actor].primary_team if actor != NO_INDEX else members[what[position]].primary_team
        audit.created_ms.append(times[position])
        audit.event_type.append(kinds[position])
        audit.actor.append(actor)
        audit.target.append(what[position])
        audit.team.append(team)
