"""The functional core of Autograd Tutor: course schema, engine, answer parsing.

Nothing here does I/O, talks to Telegram or a database, imports torch, reads the clock or uses
global randomness: time and chance come in as arguments.
"""
