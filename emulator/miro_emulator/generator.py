"""Builds a realistic org from (members, seed, now): same inputs, same org.

Generation runs once per start and is sized for 100k members and a million audit events, so the loops
below are written for speed: `random.Random` methods are inlined (`uniform(a, b)` is `a + (b - a) *
random()`, `randrange(n)` and `choice` are `_randbelow(n)`), drawing exactly what the plain calls drew, in
the same order, so an org for a seed does not depend on how fast the code is."""

from __future__ import annotations

import random
import time
from base64 import urlsafe_b64encode
from collections.abc import Callable
from itertools import accumulate
from math import log

from miro_emulator.audit import EVENT_TYPE_INDEX, EVENT_TYPES, NO_INDEX, AuditLog
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
    StateError,
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
# The events members make themselves, by weight (a roll below a type's cumulative weight picks it).
ACTIVITY_WEIGHTS = (
    ("sign_in_succeeded", 0.30),
    ("sign_in_failed", 0.03),
    ("board_opened", 0.50),
    ("board_created", 0.07),
    ("board_shared", 0.10),
)
ACTIVITY_EVENTS = tuple(name for name, _ in ACTIVITY_WEIGHTS)
# Live audit events (`add_live_audit_events`): at most this many per call, within the last this many ms.
MAX_LIVE_AUDIT_EVENTS = 100_000
LIVE_AUDIT_SPREAD_MS = 1000
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


def _randbelow(rng: random.Random) -> Callable[[int], int]:
    """`rng.randrange(n)` for n > 0 without its argument checks: randrange(n) returns `_randbelow(n)`."""
    below: Callable[[int], int] = rng._randbelow  # type: ignore[attr-defined]
    return below


def _add_members(state: OrgState, rng: random.Random, count: int, now_ms: int) -> None:
    random_ = rng.random
    below = _randbelow(rng)
    given_names = GIVEN_NAMES
    family_names = FAMILY_NAMES
    given_count = len(given_names)
    family_count = len(family_names)
    given_lower = [name.lower() for name in given_names]
    family_lower = [name.lower() for name in family_names]
    external_domains = EXTERNAL_DOMAINS
    external_count = len(external_domains)
    admin_role_count = len(ADMIN_ROLE_NAMES)
    all_members = state.all_members
    by_id = state.members_by_id
    by_email = state.members_by_email
    by_scim_id = state.members_by_scim_id
    for index in range(count):
        role = _draw_role(index, random_)
        given_at = below(given_count)
        family_at = below(family_count)
        visible = role in (ADMIN, INTERNAL_USER)
        domain = COMPANY_DOMAIN if visible else external_domains[index % external_count]
        # == f"{given}.{family}.{index}@{domain}".lower(): names and domains are ASCII
        email = f"{given_lower[given_at]}.{family_lower[family_at]}.{index}@{domain}"
        created_ms = now_ms - int((5 + 1495 * random_()) * DAY_MS)  # uniform(5, 1500) days ago
        last_activity = _draw_last_activity(random_, created_ms, now_ms)
        active = index == 0 or random_() >= 0.05
        admin_roles = (ADMIN_ROLE_NAMES[below(admin_role_count)],) if role == ADMIN else ()
        member_id = str(MEMBER_ID_BASE + index * 7919 + below(7919))
        # Spread member ids so they look like Miro's 19-digit ids but stay sortable by creation.
        scim_id = str(SCIM_ID_BASE + index * 104_729 + 17) if visible else None
        member = Member(
            index,
            member_id,
            email,
            given_names[given_at],
            family_names[family_at],
            role,
            _pick_license(random_(), role),
            active,
            now_ms - 3_600_000 if index == 0 else last_activity,
            created_ms + int(2 * random_() * DAY_MS),  # uniform(0, 2) days after creation
            created_ms,
            scim_id,
            admin_roles,
        )
        all_members.append(member)
        by_id[member_id] = member
        by_email[email] = member
        if scim_id is not None:
            by_scim_id[scim_id] = member
    state.member_ids = sorted(by_id)
    # SCIM ids grow with the member index, so index order is SCIM id order.
    state.scim_order = [member.index for member in all_members if member.scim_id is not None]


def _draw_role(index: int, random_: Callable[[], float]) -> str:
    """The first member is the token owner, so every org has at least one admin; no draw for them."""
    if index == 0:
        return ADMIN
    roll = random_()
    if roll < 0.03:
        return ADMIN
    if roll < 0.83:
        return INTERNAL_USER
    if roll < 0.93:
        return EXTERNAL_USER
    return TEAM_GUEST


def _draw_last_activity(random_: Callable[[], float], created_ms: int, now_ms: int) -> int | None:
    """A few never signed in, most are recent, a long tail is not."""
    roll = random_()
    if roll < 0.06:
        return None  # invited, never signed in
    if roll < 0.70:
        days = 0 + 30 * random_()
    elif roll < 0.82:
        days = 30 + 60 * random_()
    else:
        days = 90 + 310 * random_()  # the long tail of seats nobody uses
    return max(created_ms, now_ms - int(days * DAY_MS))


def _pick_license(roll: float, role: str) -> str:
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


TEAMS_PER_MEMBER = (1, 1, 1, 2, 2, 3)


def _add_teams(state: OrgState, rng: random.Random, now_ms: int) -> None:
    random_ = rng.random
    below = _randbelow(rng)
    members = state.all_members
    team_count = max(3, len(members) // 25)
    for index in range(team_count):
        base = TEAM_NAMES[index % len(TEAM_NAMES)]
        name = base if index < len(TEAM_NAMES) else f"{base} {index // len(TEAM_NAMES) + 1}"
        team = Team(
            index=index,
            id=str(TEAM_ID_BASE + index * 6151 + 3),
            name=name,
            created_ms=now_ms - int((400 + 1200 * random_()) * DAY_MS),
        )
        state.teams.append(team)
        state.teams_by_id[team.id] = team
    internal = [m for m in members if m.role in SCIM_VISIBLE_ROLES]
    inviter = members[0].id
    # Each team gets an internal admin first, so "the oldest team admin" always exists.
    for team in state.teams:
        founder = internal[below(len(internal))]
        _join(team, founder, "admin", team.created_ms, inviter)
    teams = state.teams
    first_team = teams[0]
    choices = TEAMS_PER_MEMBER
    choice_count = len(choices)
    for member in members:
        member_index = member.index
        member_role = member.role
        teams_for_member = 1 if member_role == TEAM_GUEST else choices[below(choice_count)]
        for _ in range(teams_for_member):
            team = teams[below(team_count)]
            memberships = team.memberships
            if member_index in memberships:
                continue
            if member_role == EXTERNAL_USER:
                role = "non_team"
            elif member_role == TEAM_GUEST:
                role = "member"
            else:
                role = "admin" if random_() < 0.05 else "member"
            joined = max(team.created_ms, member.created_ms) + int(3 * random_() * DAY_MS)
            memberships[member_index] = TeamMembership(member_index, role, joined, inviter)
            if member.primary_team == NO_INDEX:
                member.primary_team = team.index
        if member.primary_team == NO_INDEX:
            member.primary_team = first_team.index
            _join(
                first_team,
                member,
                "member" if member_role != EXTERNAL_USER else "non_team",
                member.created_ms,
                inviter,
            )


def _join(team: Team, member: Member, role: str, joined_ms: int, invited_by: str) -> None:
    if member.index in team.memberships:
        return
    team.memberships[member.index] = TeamMembership(member.index, role, joined_ms, invited_by)
    if member.primary_team == NO_INDEX:
        member.primary_team = team.index


def _add_boards(state: OrgState, rng: random.Random, now_ms: int) -> None:
    random_ = rng.random
    below = _randbelow(rng)
    owners = [m for m in state.all_members if m.role in (ADMIN, INTERNAL_USER)]
    owner_count = len(owners)
    topic_count = len(BOARD_TOPICS)
    board_count = max(5, int(len(state.all_members) * 0.8))
    boards = state.boards
    boards_by_id = state.boards_by_id
    for index in range(board_count):
        owner = owners[below(owner_count)] if random_() < 0.85 else owners[index % owner_count]
        created_ms = max(owner.created_ms, now_ms - int((1 + 899 * random_()) * DAY_MS))
        raw_id = (index + 1).to_bytes(7, "big")
        board_id = "uXjV" + urlsafe_b64encode(raw_id + b"\x00").decode()[:-1] + "="
        board = Board(
            index,
            board_id,
            f"{BOARD_TOPICS[below(topic_count)]} #{index + 1}",
            "",
            owner.primary_team,
            owner.index,
            owner.index,
            created_ms,
            min(now_ms, created_ms + int(60 * random_() * DAY_MS)),
        )
        boards.append(board)
        boards_by_id[board_id] = board


def _add_audit_events(state: OrgState, rng: random.Random, count: int, now_ms: int) -> None:
    """Events over the last 100 days, never after their actor's lastActivityAt, generated in time order.

    Every actor signs in at their lastActivityAt (so "last sign-in" from the audit log lines up with it);
    the other events fall uniformly over the window, each by an actor still active at that time (one whose
    lastActivityAt is not earlier). Actors ordered by lastActivityAt make "still active" a suffix that only
    shrinks as time goes on, so the three time-ordered streams (sign-ins, other events, deactivations) merge
    in one pass straight into the columns: no sort of a million events."""
    start_ms = now_ms - AUDIT_HISTORY_DAYS * DAY_MS
    members = state.all_members
    actors = [m for m in members if m.last_activity_ms is not None and m.last_activity_ms > start_ms]
    if not actors or count == 0:
        return
    actors.sort(key=lambda m: (m.last_activity_ms, m.index))
    sentinel = now_ms + 1  # later than every event: ends each stream without a bounds check
    sign_in_times = [m.last_activity_ms or 0 for m in actors]
    sign_in_times.append(sentinel)
    random_ = rng.random
    # Other events: sorted uniform times up to the last actor's last activity, so someone is always active.
    span = sign_in_times[len(actors) - 1] - start_ms
    positions, scale = _sorted_uniform_positions(random_, max(0, count - len(actors)), span)
    # Deactivated members: one deactivation event by the SCIM provisioner, inside the window.
    window = now_ms - start_ms
    deactivations = sorted(
        (start_ms + int(random_() * window), member.index, member.primary_team)
        for member in members
        if not member.active
    )
    deactivations.append((sentinel, NO_INDEX, NO_INDEX))
    timed = _SignInsAndDeactivations(state.audit, actors, sign_in_times, deactivations)
    _add_activity_events(state.audit, timed, random_, start_ms, positions, scale, len(state.boards))
    timed.emit_before(sentinel)  # what is left of both


def _sorted_uniform_positions(
    random_: Callable[[], float], count: int, span: int
) -> tuple[list[float], float]:
    """`count` sorted positions (each <= 0) and the scale that turns one into an offset within `span`:
    exponential gaps make the running sums sorted uniform positions without sorting a million values."""
    gaps = [1.0 - random_() for _ in range(count + 1)]  # (0, 1]: log is finite
    positions = list(accumulate(map(log, gaps)))  # <= 0 and decreasing
    del gaps
    last_position = positions.pop()
    scale = span / last_position if last_position < 0 else 0.0
    return positions, scale


# ACTIVITY_WEIGHTS summed in order (a roll below a type's bound picks it), and the types' indexes.
_ACTIVITY_BOUNDS = tuple(accumulate(weight for _, weight in ACTIVITY_WEIGHTS))
_ACTIVITY_KINDS = tuple(EVENT_TYPE_INDEX[name] for name in ACTIVITY_EVENTS)
_SIGN_IN = EVENT_TYPE_INDEX["sign_in_succeeded"]
_DEACTIVATE = EVENT_TYPE_INDEX["user_deactivated"]


class _SignInsAndDeactivations:
    """Two time-ordered streams of the generated audit log, each ended by a sentinel later than every
    event: every actor's last sign-in (at their lastActivityAt, actors in that order) and the SCIM
    provisioner's deactivations. `next_sign_in` tells who is still active: actors[next_sign_in:] have not
    signed in for the last time yet."""

    def __init__(
        self,
        audit: AuditLog,
        actors: list[Member],
        sign_in_times: list[int],
        deactivations: list[tuple[int, int, int]],
    ) -> None:
        self.audit = audit
        self.actor_indexes = [m.index for m in actors]
        self.actor_teams = [m.primary_team for m in actors]
        self.sign_in_times = sign_in_times
        self.deactivations = deactivations
        self.next_sign_in = 0
        self.next_deactivation = 0

    def emit_before(self, limit: int) -> int:
        """Emit the sign-ins and deactivations earlier than `limit`, in time order (a sign-in first when
        both fall in the same millisecond); the next one's time."""
        audit = self.audit
        while True:
            sign_in_time = self.sign_in_times[self.next_sign_in]
            deactivation_time, target, team = self.deactivations[self.next_deactivation]
            if sign_in_time <= deactivation_time:
                if sign_in_time >= limit:
                    return sign_in_time
                actor = self.actor_indexes[self.next_sign_in]
                _append_event(
                    audit, sign_in_time, _SIGN_IN, actor, actor, self.actor_teams[self.next_sign_in]
                )
                self.next_sign_in += 1
            else:
                if deactivation_time >= limit:
                    return deactivation_time
                _append_event(audit, deactivation_time, _DEACTIVATE, NO_INDEX, target, team)
                self.next_deactivation += 1


def _append_event(audit: AuditLog, created_ms: int, kind: int, actor: int, target: int, team: int) -> None:
    """`AuditLog.append` without its order check: the generator merges its streams in time order."""
    audit.created_ms.append(created_ms)
    audit.event_type.append(kind)
    audit.actor.append(actor)
    audit.target.append(target)
    audit.team.append(team)


def _add_activity_events(
    audit: AuditLog,
    timed: _SignInsAndDeactivations,
    random_: Callable[[], float],
    start_ms: int,
    positions: list[float],
    scale: float,
    board_count: int,
) -> None:
    """The events members make themselves, one at each of `positions`, by an actor still active then,
    with the sign-ins and deactivations due before it emitted first."""
    sign_in, sign_in_failed, board_opened, board_created, board_shared = _ACTIVITY_KINDS
    below_sign_in, below_failed, below_opened, below_created, total_weight = _ACTIVITY_BOUNDS
    actor_indexes = timed.actor_indexes
    actor_teams = timed.actor_teams
    actor_count = len(actor_indexes)
    add_time = audit.created_ms.append
    add_kind = audit.event_type.append
    add_actor = audit.actor.append
    add_target = audit.target.append
    add_team = audit.team.append
    pending = timed.emit_before(start_ms)  # when the first sign-in or deactivation is due
    # Hot loop (a million iterations at 100k members): int(random() * n) instead of randrange, and
    # comparisons against the cumulative weights instead of a bisect, keep generation fast.
    for position_in_window in positions:
        created = start_ms + int(position_in_window * scale)
        if pending < created:
            pending = timed.emit_before(created)
        next_sign_in = timed.next_sign_in
        position = next_sign_in + int(random_() * (actor_count - next_sign_in))
        actor = actor_indexes[position]
        add_time(created)
        add_actor(actor)
        add_team(actor_teams[position])
        roll = random_() * total_weight
        if roll < below_failed:
            add_kind(sign_in if roll < below_sign_in else sign_in_failed)
            add_target(actor)
        else:
            add_kind(
                board_opened
                if roll < below_opened
                else (board_created if roll < below_created else board_shared)
            )
            add_target(int(random_() * board_count))


def add_live_audit_events(state: OrgState, count: int, event: str | None = None) -> range:
    """Append `count` audit events happening "now", made as `_add_audit_events` makes its other events.

    Actors are active members who have signed in before, picked uniformly; the type is drawn by
    ACTIVITY_WEIGHTS (or is `event`); sign-ins target their actor, board events a board that is not
    deleted; the team is the actor's primary team. Times are sorted, within the last
    LIVE_AUDIT_SPREAD_MS and strictly after every event already in the log (a client paging ASC from
    its last event sees exactly these as new); each actor's lastActivityAt moves up to their last new
    event, keeping the generator's rule that no event comes after its actor's lastActivityAt.
    Returns the new events' positions (ids are `AuditLog.event_id(position)`)."""
    if not 1 <= count <= MAX_LIVE_AUDIT_EVENTS:
        raise StateError("invalid", f"count must be between 1 and {MAX_LIVE_AUDIT_EVENTS}")
    if event is not None and event not in ACTIVITY_EVENTS:
        raise StateError("invalid", f"event must be one of: {', '.join(ACTIVITY_EVENTS)}")
    with state.lock:
        actors = [
            m for m in state.all_members if m.active and not m.deleted and m.last_activity_ms is not None
        ]
        if not actors:
            raise StateError("conflict", "No active member who has signed in before is left to act")
        boards = [board.index for board in state.boards if not board.deleted]
        weights: tuple[tuple[str, float], ...] = ACTIVITY_WEIGHTS if event is None else ((event, 1.0),)
        if not boards:
            if event is not None and _object_kind(event) == "board":
                raise StateError("conflict", f"No board is left for {event} events")
            weights = tuple(pair for pair in weights if _object_kind(pair[0]) == "user")
        cumulative: list[tuple[float, int]] = []
        running = 0.0
        for name, weight in weights:
            running += weight
            cumulative.append((running, EVENT_TYPE_INDEX[name]))
        audit = state.audit
        last_ms = audit.created_ms[-1] if len(audit) else None
        now_ms = state.clock.now_ms()
        while last_ms is not None and now_ms <= last_ms:
            # An event in this very millisecond: wait for the next one rather than date events ahead of the
            # clock (later SCIM events take the clock's time and must not sort before these).
            time.sleep((last_ms - now_ms + 1) / 1000)
            now_ms = state.clock.now_ms()
        low_ms = now_ms - LIVE_AUDIT_SPREAD_MS + 1
        if last_ms is not None:
            low_ms = max(low_ms, last_ms + 1)
        first = len(audit)
        rng = random.Random(f"{state.config.seed}:{first}")
        random_ = rng.random
        span = now_ms - low_ms + 1
        times = sorted(low_ms + int(random_() * span) for _ in range(count))
        actor_count = len(actors)
        board_count = len(boards)
        for created in times:
            actor = actors[int(random_() * actor_count)]
            roll = random_() * running
            kind = next((index for bound, index in cumulative if roll < bound), cumulative[-1][1])
            if EVENT_TYPES[kind].object_kind == "board":
                target = boards[int(random_() * board_count)]
            else:
                target = actor.index
            audit.append(created, kind, actor.index, target, actor.primary_team)
            actor.last_activity_ms = max(actor.last_activity_ms or 0, created)
        return range(first, len(audit))


def _object_kind(event_name: str) -> str:
    return EVENT_TYPES[EVENT_TYPE_INDEX[event_name]].object_kind
