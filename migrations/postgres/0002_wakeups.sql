-- Wake-ups between replicas: a change one replica commits is announced on the channel
-- `alert_responder` (delivered at commit), so the others act at once instead of at their next
-- poll. Statement-level triggers: one notification per statement, not per row. The polls stay
-- as the fallback (a lost listener connection, or a pooler that drops LISTEN).
CREATE FUNCTION alert_responder_wake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('alert_responder', TG_ARGV[0]);
    RETURN NULL;
END
$$;

CREATE TRIGGER journal_wake AFTER INSERT ON journal
    FOR EACH STATEMENT EXECUTE FUNCTION alert_responder_wake('journal');
CREATE TRIGGER outbox_wake AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION alert_responder_wake('outbox');
CREATE TRIGGER approvals_wake AFTER UPDATE ON approvals
    FOR EACH STATEMENT EXECUTE FUNCTION alert_responder_wake('approvals');
CREATE TRIGGER modes_wake AFTER INSERT OR UPDATE OR DELETE ON mode_overrides
    FOR EACH STATEMENT EXECUTE FUNCTION alert_responder_wake('modes');
CREATE TRIGGER runs_cancel_wake AFTER UPDATE OF cancel_requested ON runs
    FOR EACH STATEMENT EXECUTE FUNCTION alert_responder_wake('runs');
