"""Values every layer shares: sessions, events, outcomes, thread records, the clock bound, JSON decoding."""
