"""Pure decisions: commands, deciders, access rules, names and API records.

No I/O: nothing here imports asyncpg, Ray or aiohttp.
"""
