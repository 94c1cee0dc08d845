"""Busy time: events in a person's own calendars that make that time unbookable.

options.py  what a sync asks for: all-day policy, label, whose declines count, the zone
expand.py   one calendar object -> the busy blocks of its occurrences in a window (pure)
plan.py     stored busy links + wanted blocks -> add/remove actions (pure), and their JSON
step.py     the cycle's busy step: read the sources, plan, journal, apply, move the tokens

The flow mirrors the appointment engine: what changed in a source calendar is read with one
sync-token request, only changed events are expanded again, the difference against the busy
links in the state store becomes journaled actions, and each action's effect is committed
with its journal mark. See ``step.py`` for the crash-safety argument.
"""
