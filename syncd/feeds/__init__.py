"""Published ICS feeds: per sync, staff member or resource; full detail or busy-only.

ledger.py   pure: what a feed publishes next (SEQUENCE, cancelled-for-a-while)
render.py   pure: entries -> VCALENDAR bytes, strong ETag, gzip
store.py    FeedStore: feeds kept rendered in memory, refreshed after sync runs
tables.py   the feed store's rows in the state database
"""

from syncd.feeds.render import RenderedFeed
from syncd.feeds.store import FeedStore, feed_options

__all__ = ["FeedStore", "RenderedFeed", "feed_options"]
