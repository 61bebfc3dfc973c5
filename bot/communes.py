"""Quảng Ninh's commune-level units after 1 July 2025: knowledge/communes.yaml.

    load_communes(path) -> Communes     raises FlowLoadError with file:line problems
    communes.find(text)                 the units a message names, by new or old name
    communes.nearest(lat, lon, limit)   the closest service centres that have coordinates
    communes.describe(found, lang)      where to go, in short plain words
    communes.describe_all(found, lang)  the same for every unit a message named
    communes.near_text(lat, lon, lang)  the nearest centre to a shared location, or why not
    CommuneBook(path).get()             the file as a running bot reads it: reloaded on
                                        change, the last good version kept on a broken edit

Each unit lists the old xã, phường and thị trấn it was formed from ("xã Quảng La",
"một phần xã Đồng Lâm" when the old unit was split). `find` is for a message that
names a commune, such as the answer to "Bạn ở xã nào?": many names are also common
words ("Thống Nhất", "Đoàn Kết"), so it does not decide what the message is about.
A text never states a fact the file does not hold: empty centre fields send the citizen
to the provincial portal.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, NamedTuple

from pydantic import AfterValidator, Field, model_validator
from rapidfuzz import fuzz, process

from bot.errors import FlowLoadError, Problem
from bot.flow.loader import SourceMap, load_yaml_model
from bot.flow.model import ID_PATTERN, Source, _Model
from bot.knowledge import source_map
from bot.text import nfc, normalize, strip_accents

__all__ = [
    "EXPECTED",
    "Centre",
    "COMMUNES_FILE",
    "CommuneBook",
    "Communes",
    "Kind",
    "Match",
    "Nearby",
    "Unit",
    "lint_communes",
    "load_communes",
    "plain_words",
]

log = logging.getLogger(__name__)

# The file in knowledge/ this module reads.
COMMUNES_FILE = "communes.yaml"

Kind = Literal["phuong", "xa", "dac_khu"]
# Resolution 1679/NQ-UBTVQH15: 30 phường, 22 xã, 2 đặc khu.
EXPECTED: dict[str, int] = {"phuong": 30, "xa": 22, "dac_khu": 2}

_KIND_VI = {"phuong": "phường", "xa": "xã", "dac_khu": "đặc khu"}
_KIND_EN = {"phuong": "ward", "xa": "commune", "dac_khu": "special zone"}
_OLD_KIND_EN = {"phường": "ward", "xã": "commune", "thị trấn": "township"}
# How citizens write a kind word once folded ("P. Hồng Hải", "tt Cái Rồng").
_SPELLINGS = {
    "phường": ("phuong", "p"),
    "xã": ("xa", "x"),
    "thị trấn": ("thi tran", "tt"),
    "đặc khu": ("dac khu",),
}
_PART = "một phần "
_OLD_NAME = re.compile(r"^(?:một phần )?(phường|xã|thị trấn) (\S.*)$")
_EARTH_KM = 6371.0088
_MAX_WORDS = 60  # a commune is named early; long texts are cut for speed
# Typos: a window of the message must be this close to a name (rapidfuzz ratio, 0-100),
# and the name this long, or it does not count.
FUZZY_THRESHOLD = 90.0
_FUZZY_MIN_CHARS = 6


def _check_old_name(value: str) -> str:
    value = nfc(value).strip()
    if _OLD_NAME.match(value) is None:
        raise ValueError(
            f"'{value}': begin with the old kind word: 'xã …', 'phường …' or 'thị trấn …', "
            "and 'một phần xã …' when only part of it joined this unit"
        )
    return value


OldName = Annotated[str, AfterValidator(_check_old_name)]


class Centre(_Model):
    """A public administration service centre; empty fields are not known yet."""

    name: str = Field(min_length=1)
    address: str | None = None
    phone: str | None = None
    hours: str | None = None
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)

    @model_validator(mode="after")
    def _both_coordinates(self) -> Centre:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("give both latitude and longitude, or neither")
        return self


class Unit(_Model):
    """One new commune-level unit and the old units it was formed from."""

    id: str = Field(pattern=ID_PATTERN, max_length=32)
    name: str = Field(min_length=1)
    kind: Kind
    formed_from: tuple[OldName, ...] = ()
    sources: tuple[Source, ...] = ()
    centre: Centre

    @property
    def full_name(self) -> str:
        """The name with its kind word, lowercase first: "xã Đường Hoa"."""
        return f"{_KIND_VI[self.kind]} {self.name}"


class _CommunesFile(_Model):
    source: Source
    portal: str = Field(pattern=r"^https?://")
    units: tuple[Unit, ...] = Field(min_length=1)


@dataclass(frozen=True)
class Match:
    """A unit a message names. `name` is the name found, as written in the file."""

    unit: Unit
    name: str
    old: bool  # an old unit's name, not the new unit's own
    partial: bool  # only part of that old unit went to `unit`
    score: float  # 100 for an exact match, less for a typo
    # Where in the message (its folded words, [start, end)) and whether the kind word
    # ("xã", "phường", "tt") was written before the name: "xã Thống Nhất" names a
    # commune, a bare "thống nhất" may be any word.
    start: int = 0
    end: int = 0
    with_kind: bool = False


class Nearby(NamedTuple):
    unit: Unit
    km: float


@dataclass(frozen=True)
class _Entry:
    unit: Unit
    name: str
    old: bool
    partial: bool
    order: int  # place of the unit in the file, for a stable result order
    words: int  # words of the name without its kind word


Phrase = tuple[str, ...]


def _plain(text: str) -> str:
    # Not bot.text.fold: its teencode reads a bare "hong" as "không", and "phuong hong hai"
    # must stay the name Hồng Hải. Place names only need case and diacritics removed.
    return strip_accents(normalize(text))


def plain_words(text: str) -> list[str]:
    """The words of `text` as `find` reads them (folded, no diacritics), for positions
    given by `Match.start` and `Match.end`."""
    return _plain(text).split()[:_MAX_WORDS]


# Names of one size and the same first letters, and at the same index what each names.
_Targets = tuple[list[str], list[list["_Entry"]]]


def _initials(text: str) -> tuple[str, ...]:
    return tuple(word[0] for word in text.split())


def _phrases(kind_word: str, name: str) -> list[Phrase]:
    bare = tuple(_plain(name).split())
    out = [bare]
    out += [tuple(s.split()) + bare for s in _SPELLINGS[kind_word]]
    return out


class Communes:
    """The units of knowledge/communes.yaml, found by name or by distance."""

    def __init__(
        self,
        units: Sequence[Unit],
        *,
        portal: str,
        source: Source | None = None,
        warnings: Sequence[Problem] = (),
    ) -> None:
        self.units = tuple(units)
        self.portal = portal
        self.source = source
        self.warnings = tuple(warnings)  # counts that differ from the resolution's
        self._by_id = {unit.id: unit for unit in self.units}
        self._index: dict[Phrase, list[_Entry]] = {}
        for order, unit in enumerate(self.units):
            size = len(_plain(unit.name).split())
            own = _Entry(unit, unit.name, old=False, partial=False, order=order, words=size)
            for phrase in _phrases(_KIND_VI[unit.kind], unit.name):
                self._index.setdefault(phrase, []).append(own)
            for written in unit.formed_from:
                found = _OLD_NAME.match(written)
                if found is None:  # the model checked every old name already
                    continue
                kind_word, name = found.groups()
                partial = written.startswith(_PART)
                entry = _Entry(unit, written, True, partial, order, len(_plain(name).split()))
                for phrase in _phrases(kind_word, name):
                    self._index.setdefault(phrase, []).append(entry)
        self._longest = max((len(p) for p in self._index), default=0)
        # Names long enough to compare with a typo, by their number of words, then by
        # the first letters of their words (a typo rarely hits one: "quang chnh" is
        # not Quang Hanh, so a window is compared only with names that share them):
        # the texts and, at the same index, the entries each names. Words 0 holds the
        # names with their spaces removed, for a message that ran its words together.
        self._targets: dict[int, dict[tuple[str, ...], _Targets]] = {}
        for phrase, entries in self._index.items():
            text = " ".join(phrase)
            if len(text) >= _FUZZY_MIN_CHARS:
                self._target(len(phrase), text, entries)
                if len(phrase) > 1:
                    self._target(0, text.replace(" ", ""), entries)

    def _target(self, size: int, text: str, entries: list[_Entry]) -> None:
        by_initials = self._targets.setdefault(size, {})
        texts, owners = by_initials.setdefault(_initials(text), ([], []))
        texts.append(text)
        owners.append(entries)

    def unit(self, unit_id: str) -> Unit | None:
        return self._by_id.get(unit_id)

    def find(self, text: str, *, fuzzy: bool = True) -> list[Match]:
        """The units `text` names: exact names (with or without diacritics and kind word)
        first; only when none is found (and `fuzzy`), the closest names within
        FUZZY_THRESHOLD. The typo search costs a few milliseconds on a long message; the
        exact one a twentieth of that."""
        words = plain_words(text)
        hits = self._exact(words) or (self._fuzzy(words) if fuzzy else [])
        return _best_per_unit(hits)

    def _exact(self, words: list[str]) -> list[tuple[int, int, _Entry, float]]:
        hits = []
        for start in range(len(words)):
            for end in range(start + 1, min(start + self._longest, len(words)) + 1):
                for entry in self._index.get(tuple(words[start:end]), ()):
                    hits.append((start, end, entry, 100.0))
        # "xã Hạ Long" names the old commune of Vân Đồn, not phường Hạ Long: a phrase
        # inside a longer one that matched does not count.
        return [
            hit
            for hit in hits
            if not any(
                o[0] <= hit[0] and hit[1] <= o[1] and o[1] - o[0] > hit[1] - hit[0] for o in hits
            )
        ]

    def _fuzzy(self, words: list[str]) -> list[tuple[int, int, _Entry, float]]:
        best = FUZZY_THRESHOLD
        hits: list[tuple[int, int, _Entry, float]] = []
        # One call per window of the message, against every name of that many words
        # and the same first letters: a few calls for a short message, not one per name.
        for size, by_initials in self._targets.items():
            # size 0 stands for a name typed as one word ("cairong"): compared without spaces
            span = size or 1
            for start in range(len(words) - span + 1):
                window = " ".join(words[start : start + span])
                targets = by_initials.get(_initials(window))
                if targets is None:
                    continue
                texts, entries = targets
                for _, score, index in process.extract(
                    window, texts, scorer=fuzz.ratio, score_cutoff=best, limit=None
                ):
                    if score > best:
                        best, hits = score, []
                    hits += [(start, start + span, entry, score) for entry in entries[index]]
        # Only the closest names count: a hit kept before a closer one was found is not.
        return [hit for hit in hits if hit[3] >= best]

    def nearest(self, latitude: float, longitude: float, limit: int = 1) -> list[Nearby]:
        """The `limit` closest centres (great-circle km); units without coordinates are
        skipped, so the list may be shorter or empty."""
        found = []
        for unit in self.units:
            lat, lon = unit.centre.latitude, unit.centre.longitude
            if lat is not None and lon is not None:
                found.append(Nearby(unit, _haversine(latitude, longitude, lat, lon)))
        found.sort(key=lambda near: near.km)
        return found[: max(limit, 0)]

    def describe(self, found: Unit | Match, lang: str = "vi") -> str:
        """Where the citizen goes, in `lang` ("vi", or "en"; others get Vietnamese): the
        new unit (and the old one they named), then the centre's address, phone and hours
        as far as the file knows them, and the portal for what it does not know."""
        return self.describe_all((found,), lang)

    def describe_all(self, found: Sequence[Unit | Match], lang: str = "vi") -> str:
        """`describe` for several units (an old commune split in two, two names in one
        message); the portal is named once, after them."""
        words = _EN if lang == "en" else _VI
        lines: list[str] = []
        missing: set[str] = set()
        for item in found:
            match = item if isinstance(item, Match) else None
            unit = item.unit if isinstance(item, Match) else item
            where = _where_en(unit, match) if lang == "en" else _where_vi(unit, match)
            lines += [where] if where else []
            lines.append(words["go"].format(centre=unit.centre.name))
            lines += _known(unit.centre, words)
            missing |= {key for key in ("address", "hours") if not getattr(unit.centre, key)}
        if missing:
            lines.append(self._portal_line(missing, words))
        return "\n".join(lines)

    def near_text(
        self, latitude: float, longitude: float, lang: str = "vi", *, human: str | None = None
    ) -> str:
        """The answer to a shared location: the nearest centre with its distance and what
        the file knows of it; or, when no centre has coordinates yet, where to look and
        the volunteer button (`human`, its label) to press."""
        words = _EN if lang == "en" else _VI
        found = self.nearest(latitude, longitude)
        if not found:
            label = human or words["human"]
            return words["no_coordinates"].format(portal=self.portal, human=label)
        centre = found[0].unit.centre
        lines = [words["nearest"].format(centre=centre.name, km=_km(found[0].km, lang))]
        lines += _known(centre, words)
        missing = {key for key in ("address", "hours") if not getattr(centre, key)}
        if missing:
            lines.append(self._portal_line(missing, words))
        return "\n".join(lines)

    def _portal_line(self, missing: set[str], words: dict[str, str]) -> str:
        head = words["address_hours"] if len(missing) == 2 else words[min(missing)]
        return words["portal"].format(head=head, portal=self.portal)


def _known(centre: Centre, words: dict[str, str]) -> list[str]:
    fields = (("address", centre.address), ("phone", centre.phone), ("hours", centre.hours))
    return [f"{words[key]}: {value}" for key, value in fields if value]


def _km(km: float, lang: str) -> str:
    # Rounded: the distance is as the crow flies, and a precise figure would say more
    # about where the citizen is than they need to read back.
    text = f"{km:.0f}" if km >= 10 else f"{km:.1f}"
    return text if lang == "en" else text.replace(".", ",")


_VI = {
    "go": "Bạn làm thủ tục tại {centre}.",
    "address": "Địa chỉ",
    "phone": "Điện thoại",
    "hours": "Giờ làm việc",
    "address_hours": "Địa chỉ và giờ làm việc",
    "portal": "{head}: xem trên Cổng dịch vụ công Quảng Ninh: {portal}",
    "nearest": (
        "Mình đã nhận được vị trí của bạn.\n"
        "Gần bạn nhất là {centre}, cách khoảng {km} km đường chim bay."
    ),
    "no_coordinates": (
        "Mình đã nhận được vị trí của bạn. Nhưng mình chưa có vị trí các trung tâm phục vụ"
        " hành chính công, nên chưa tìm được trung tâm gần bạn.\n"
        "1. Bạn xem địa chỉ trên Cổng dịch vụ công Quảng Ninh: {portal}\n"
        '2. Hoặc bấm "{human}" để tình nguyện viên tìm giúp bạn.'
    ),
    "human": "Cần người giúp",
}
_EN = {
    "go": "Go to the public administration service centre: {centre}.",
    "address": "Address",
    "phone": "Phone",
    "hours": "Opening hours",
    "address_hours": "Address and opening hours",
    "portal": "{head}: see the Quảng Ninh public services portal: {portal}",
    "nearest": (
        "I got your location.\nThe nearest is {centre}, about {km} km away as the crow flies."
    ),
    "no_coordinates": (
        "I got your location. But I do not know where the public service centres are yet,"
        " so I cannot find the nearest one.\n"
        "1. Look up the address on the Quảng Ninh public services portal: {portal}\n"
        '2. Or press "{human}" and a volunteer will find it for you.'
    ),
    "human": "Talk to a person",
}


def _best_per_unit(hits: list[tuple[int, int, _Entry, float]]) -> list[Match]:
    # One match per unit: its own name before an old one, a longer phrase before a shorter.
    chosen: dict[str, tuple[int, int, _Entry, float]] = {}
    for hit in hits:
        start, end, entry, _ = hit
        key = (entry.old, -(end - start), start)
        current = chosen.get(entry.unit.id)
        if current is None or key < (current[2].old, -(current[1] - current[0]), current[0]):
            chosen[entry.unit.id] = hit
    ordered = sorted(chosen.values(), key=lambda h: (h[0], h[2].old, h[2].order))
    return [
        Match(e.unit, e.name, e.old, e.partial, score, start, end, end - start > e.words)
        for start, end, e, score in ordered
    ]


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _where_vi(unit: Unit, match: Match | None) -> str | None:
    if match is not None and match.old:
        if match.partial:
            return f"Một phần {match.name[len(_PART) :]} cũ nay thuộc {unit.full_name}."
        return f"{_capital(match.name)} cũ nay thuộc {unit.full_name}."
    if unit.formed_from:
        return f"{_capital(unit.full_name)} được lập từ: {', '.join(unit.formed_from)}."
    return None


def _english_old(written: str) -> str:
    found = _OLD_NAME.match(written)
    if found is None:
        return written
    kind_word, name = found.groups()
    part = "part of " if written.startswith(_PART) else ""
    return f"{part}{name} {_OLD_KIND_EN[kind_word]}"


def _where_en(unit: Unit, match: Match | None) -> str | None:
    new = f"{unit.name} {_KIND_EN[unit.kind]}"
    if match is not None and match.old:
        if match.partial:
            return f"Part of the former {_english_old(match.name[len(_PART) :])} is now in {new}."
        return f"The former {_english_old(match.name)} is now in {new}."
    if unit.formed_from:
        old = ", ".join(_english_old(name) for name in unit.formed_from)
        return f"{new} was formed from: {old}."
    return None


def _haversine(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_KM * math.asin(math.sqrt(a))


class CommuneBook:
    """communes.yaml as a running bot reads it: read again when the file changes (its
    size and time looked at most every `recheck_seconds`: a message asks three
    times), and a broken edit keeps the last good version, its problems logged as
    file:line like other content. `get()` is None while no version ever loaded."""

    def __init__(self, path: Path, *, recheck_seconds: float = 1.0) -> None:
        self.path = path
        self.recheck_seconds = recheck_seconds
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._good: Communes | None = None
        self._checked = -math.inf

    def get(self) -> Communes | None:
        now = time.monotonic()
        if now - self._checked < self.recheck_seconds:
            return self._good
        self._checked = now
        try:
            stat = self.path.stat()
            stamp: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            stamp = None
        with self._lock:
            if stamp is not None and stamp != self._stamp:
                self._stamp = stamp
                try:
                    self._good = load_communes(self.path)
                except FlowLoadError as exc:
                    for problem in exc.problems:
                        log.error("%s", problem)
            return self._good


def load_communes(path: Path) -> Communes:
    """Read communes.yaml. Errors (schema, a duplicate id or name, an old unit under two
    units without "một phần") raise FlowLoadError as file:line; counts other than the
    resolution's 30/22/2 are kept in `Communes.warnings`."""
    data = load_yaml_model(path, _CommunesFile)
    file = str(path)
    src = source_map(file, path.read_text(encoding="utf-8-sig"))
    problems = lint_communes(file, src, data.units)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise FlowLoadError(sorted(errors))
    warnings = sorted(p for p in problems if p.severity != "error")
    return Communes(data.units, portal=data.portal, source=data.source, warnings=warnings)


def lint_communes(file: str, src: SourceMap, units: Sequence[Unit]) -> list[Problem]:
    """What the schema cannot check: counts, duplicates, old units claimed twice."""
    out: list[Problem] = []
    counts = {kind: sum(1 for u in units if u.kind == kind) for kind in EXPECTED}
    if len(units) != sum(EXPECTED.values()) or counts != EXPECTED:
        have = ", ".join(f"{n} {_KIND_VI[k]}" for k, n in counts.items())
        message = f"{len(units)} units ({have}); the resolution has 54: 30 phường, 22 xã, 2 đặc khu"
        out.append(Problem(file, src.line("units"), message, "warning"))
    ids: dict[str, int] = {}
    names: dict[str, int] = {}
    # Old unit (kind word + name, folded) → where it is written and whether as a part.
    claims: dict[str, tuple[int, int, bool]] = {}
    for index, unit in enumerate(units):
        line = src.line("units", index, "id")
        if unit.id in ids:
            out.append(
                Problem(file, line, f"the id '{unit.id}' is already used at line {ids[unit.id]}")
            )
        ids.setdefault(unit.id, line)
        name_line = src.line("units", index, "name")
        key = _plain(unit.name)
        if key in names:
            message = f"the name '{unit.name}' is already used at line {names[key]}"
            out.append(Problem(file, name_line, message))
        names.setdefault(key, name_line)
        for number, written in enumerate(unit.formed_from):
            out += _claim(file, src, claims, index, number, written)
    return out


def _claim(
    file: str,
    src: SourceMap,
    claims: dict[str, tuple[int, int, bool]],
    index: int,
    number: int,
    written: str,
) -> list[Problem]:
    partial = written.startswith(_PART)
    key = _plain(written[len(_PART) :] if partial else written)
    line = src.line("units", index, "formed_from", number)
    earlier = claims.get(key)
    if earlier is None:
        claims[key] = (index, line, partial)
        return []
    where, earlier_line, earlier_partial = earlier
    if where == index:
        return [Problem(file, line, f"'{written}' is listed twice in this unit")]
    if partial and earlier_partial:
        return []
    base = written[len(_PART) :] if partial else written
    message = (
        f"'{base}' is also listed at line {earlier_line}: when the resolution splits an old "
        f"unit, write 'một phần {base}' under each new unit"
    )
    return [Problem(file, line, message)]
