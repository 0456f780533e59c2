"""Development stack: start the stand-in servers and the four services on one machine.

Used by ``make run`` (with a demo campaign) and by the integration and end-to-end tests,
so what a developer runs is what the tests prove.
"""
