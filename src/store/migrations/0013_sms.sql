-- The provider's id of a message sent by SMS (SPEC §14): what its support
-- and its delivery reports name the message by.
ALTER TABLE deliveries ADD COLUMN provider_id TEXT;
