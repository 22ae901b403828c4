"""Access control for the served app: nobody gets into a collaboration review uninvited.

One small module per idea: ``users`` (the argon2-hashed users file), ``ratelimit`` (failed logins per
user and per client address), ``session`` (the cookie secret, signed expiring session cookies, safe
``next=`` targets), ``origins`` (the exact WebSocket Origin allow-list), ``login`` (the login and logout
pages), ``provider`` (the Bokeh auth providers: our own for ``--auth basic``, Panel's OAuth wrapped for
``--auth oauth``), ``roles`` (analyst / read-only reviewer, read on the server side) and ``settings``
(the ``hepml serve`` options checked and turned into ``pn.serve`` arguments). Import from the defining
module, e.g. ``from app.auth.roles import current_role``.
"""

__all__: list[str] = []
