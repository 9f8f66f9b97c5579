"""Sending: what to send (the plan), the requests at the API's pace (client, pool, rate), what came back
(the recorder) and what was saved (the state)."""
