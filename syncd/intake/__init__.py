"""Intake: new events a person puts in a sync's intake calendar become provider bookings.

request.py  IntakeRequest (what a provider is asked to book) and its stable reference (pure)
read.py     one calendar object -> an IntakeRequest, or the reason it is no booking (pure)
mark.py     the ``[not booked: reason]`` title mark on a refused event (pure)
plan.py     changed intake events + stored decisions -> Book / Decline / Forget (pure)
journal.py  intake state and the intake journal in the state store
apply.py    booking with crash recovery by reference; the event replaced, or marked
step.py     the cycle's intake step: read the calendar, plan, journal, apply, move the token

A provider takes part by declaring ``Capability.INTAKE`` and implementing
``Provider.book_from_event`` and ``Provider.find_booking`` (``syncd.providers.base``). See
``apply.py`` for why a crash between booking and recording the id never books twice, and
``plan.py`` for why a refused event is never retried until the person edits it.
"""
