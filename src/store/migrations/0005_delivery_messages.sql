-- The message a delivery carries (subject, texts, webhook body) moves to a
-- table of its own. It is written once, when the decision to notify is
-- recorded, and read once, when the delivery is claimed for sending; the
-- delivery row itself changes state two or three times (pending, sending,
-- sent). With the message inside it, each of those changes rewrote a row
-- of a few kilobytes (a page of the write-ahead log per delivery); without
-- it, a few dozen deliveries share a page.
CREATE TABLE delivery_messages (
    delivery_id INTEGER PRIMARY KEY REFERENCES deliveries (id),
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT,
    payload TEXT
);
INSERT INTO delivery_messages (delivery_id, subject, body_text, body_html, payload)
    SELECT id, subject, body_text, body_html, payload FROM deliveries;
ALTER TABLE deliveries DROP COLUMN subject;
ALTER TABLE deliveries DROP COLUMN body_text;
ALTER TABLE deliveries DROP COLUMN body_html;
ALTER TABLE deliveries DROP COLUMN payload;

-- Indexes that cost more than they give. The audit log is read in id
-- order, never by time: one page less to write per audited action. The
-- deliveries' states change two or three times each (claimed, sent); the
-- counts by state read the whole table anyway, and the requeue at start-up
-- once: two index updates less per delivery.
DROP INDEX audit_log_at;
DROP INDEX deliveries_state;
