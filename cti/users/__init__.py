"""People who log in to the help desk (admins, supervisors, agents): accounts, passwords, login sessions.

Nothing is imported here so that the HTTP core can use :mod:`cti.users.sessions` without pulling in the
routes (which import the HTTP core back).
"""
