"""Citizens' notifications (Law 09.08 art. 7: the person knows who used their data): a
person's choice of channel, address and scope, the words of each notice in their language,
the senders (SMTP, an SMS gateway over HTTP, the demo's file) and the delivery job that tails
the audit log and sends the one outbox's notices to citizens.

May import: ``consent`` (the choices' table and the outbox), ``vault`` (the address, a record
of its own), ``audit`` (reading entries), the gateway's enforcement point, settings, jobs and
the portal's catalogues. Never writes an address outside the vault, never puts a field's name
or value into a notice, and reads an address only under a decision of the policy
(``deliver_notice``), recorded first.
"""
