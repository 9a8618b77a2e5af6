#!/usr/bin/env python3
"""An independent reference for uwf's schedule fire times, used by ScheduleTimingTests.

Reads a JSON list of cases on stdin, each {cron, dialect, zone, repeated, skipped, from_ms, until_ms}, and writes a JSON
list of fire-time lists (milliseconds, in (from_ms, until_ms]) on stdout.

It shares no code or algorithm with the Swift implementation: it walks every UTC hour of the range, reads the local
time of each minute from Python's zoneinfo (the system's tz database, not ICU's), tests the cron fields on it, and
applies the DST policies from their definitions:
- a local time that occurs twice (PEP 495 fold) fires at the first (fold 0), the last (fold 1) or both;
- local times inside a gap (clocks forward) fire once at the transition instant ("shift") or not at all ("skip").
"""
import json
import sys
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
          "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}


def parse_value(text, names, base):
    if text.upper() in names:
        return names.index(text.upper()) + base
    return int(text)


def parse_field(text, lo, hi, names=(), base=0):
    if text in ("*", "?"):
        return set(range(lo, hi + 1))
    values = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, s = part.split("/")
            step = int(s)
        if part == "*":
            a, b = lo, hi
        elif "-" in part:
            x, y = part.split("-")
            a, b = parse_value(x, names, base), parse_value(y, names, base)
        else:
            a = parse_value(part, names, base)
            b = hi if step > 1 else a
        values.update(range(a, b + 1, step))
    return values


class Cron:
    def __init__(self, text, dialect):
        fields = text.split()
        if len(fields) == 1 and fields[0].startswith("@"):
            fields = MACROS[fields[0].lower()].split()
            if dialect == "seconds":
                fields = ["0"] + fields
        if dialect == "unix":
            fields = ["0"] + fields
        self.seconds = sorted(parse_field(fields[0], 0, 59))
        self.minutes = parse_field(fields[1], 0, 59)
        self.hours = parse_field(fields[2], 0, 23)
        self.dom = parse_field(fields[3], 1, 31)
        self.months = parse_field(fields[4], 1, 12, MONTHS, 1)
        dow = parse_field(fields[5], 0, 7, DAYS, 0)
        self.dow = {d % 7 for d in dow}
        self.dom_star = fields[3] in ("*", "?")
        self.dow_star = fields[5] in ("*", "?")

    def minute_matches(self, naive):
        if naive.minute not in self.minutes or naive.hour not in self.hours or naive.month not in self.months:
            return False
        dom = naive.day in self.dom
        dow = (naive.isoweekday() % 7) in self.dow
        if not self.dom_star and not self.dow_star:
            return dom or dow
        return dom and dow


def fires(case):
    cron = Cron(case["cron"], case["dialect"])
    zone = ZoneInfo(case["zone"])
    lo, hi = case["from_ms"], case["until_ms"]
    out = set()

    def offset(ts):
        return int(datetime.fromtimestamp(ts, zone).utcoffset().total_seconds())

    start = (lo // 1000 // 3600 - 1) * 3600
    end = hi // 1000 + 3600
    epoch = datetime(1970, 1, 1)
    for hour in range(start, end, 3600):
        quiet = offset(hour - 3 * 3600) == offset(hour + 4 * 3600)
        if quiet:
            # No transition within hours: every minute's local time is the UTC time plus one offset, and occurs once.
            o = offset(hour)
            for minute in range(60):
                ts = hour + minute * 60
                if cron.minute_matches(epoch + timedelta(seconds=ts + o)):
                    for s in cron.seconds:
                        out.add((ts + s) * 1000)
            continue
        for minute in range(60):
            ts = hour + minute * 60
            local = datetime.fromtimestamp(ts, zone)
            naive = local.replace(tzinfo=None)
            if cron.minute_matches(naive):
                o0 = naive.replace(tzinfo=zone, fold=0).utcoffset()
                o1 = naive.replace(tzinfo=zone, fold=1).utcoffset()
                ambiguous = o0 != o1
                keep = True
                if ambiguous:
                    which = "first" if local.utcoffset() == o0 else "last"
                    keep = case["repeated"] == "both" or case["repeated"] == which
                if keep:
                    for s in cron.seconds:
                        out.add((ts + s) * 1000)
            # Clocks going forward at ts: the local times in the gap fire once at ts under "shift".
            before, after = offset(ts - 60), offset(ts)
            if after > before and case["skipped"] == "shift":
                gap_start = datetime(1970, 1, 1) + timedelta(seconds=ts + before)
                for m in range((after - before) // 60):
                    if cron.minute_matches(gap_start + timedelta(minutes=m)):
                        out.add(ts * 1000)
                        break
    return sorted(t for t in out if lo < t <= hi)


if __name__ == "__main__":
    cases = json.load(sys.stdin)
    json.dump([fires(c) for c in cases], sys.stdout)
