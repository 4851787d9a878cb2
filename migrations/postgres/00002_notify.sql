-- Change notifications for watchers (Postgres).
--
-- Every insert, update and delete of a kv row sends a NOTIFY with the key
-- (hex) and its new version, or "d" for a delete; never the value, so the
-- payload stays far below Postgres's 8000-byte limit (keys are at most
-- 2048 bytes). SMS replicas LISTEN and re-read the keys they care about.
-- Notifications are sent at commit, so a rolled-back write sends none.
--
-- The channel is per schema ("sms_kv_" and 16 hex digits of md5(schema)),
-- so deployments, and tests, sharing one database in different schemas do
-- not hear each other. sqlkv/postgres computes the same name.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION kv_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('sms_kv_' || left(md5(TG_TABLE_SCHEMA), 16), encode(OLD.key, 'hex') || ':d');
        RETURN OLD;
    END IF;
    PERFORM pg_notify('sms_kv_' || left(md5(TG_TABLE_SCHEMA), 16), encode(NEW.key, 'hex') || ':' || NEW.version);
    RETURN NEW;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER kv_notify AFTER INSERT OR UPDATE OR DELETE ON kv
    FOR EACH ROW EXECUTE FUNCTION kv_notify();

-- +goose Down
DROP TRIGGER kv_notify ON kv;
DROP FUNCTION kv_notify();
