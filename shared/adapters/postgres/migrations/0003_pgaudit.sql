-- pgAudit on, and the runtime account's privileges on the migrator's tables. Both concern Cloud SQL only:
-- elsewhere (the local embedded PostgreSQL, a plain PostgreSQL 16) each block finds nothing to do and does nothing.
-- On Cloud SQL this runs as the migrator account, which owns every table (docs/operations.md, "Migrations").

-- The cloudsql.enable_pgaudit flag only loads pgAudit: it audits a database once the extension exists there.
-- Creating it needs Cloud SQL's cloudsqlsuperuser role, which the migrator holds. Where pgaudit is not installed
-- (pg_available_extensions) this is skipped; on a plain PostgreSQL that has the package but does not preload
-- the library, CREATE EXTENSION fails and is skipped too. On Cloud SQL a failure is a real error.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pgaudit') THEN
        RAISE NOTICE 'pgaudit is not available on this server; not created';
    ELSIF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cloudsqlsuperuser') THEN
        CREATE EXTENSION IF NOT EXISTS pgaudit;
    ELSE
        BEGIN
            CREATE EXTENSION IF NOT EXISTS pgaudit;
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'pgaudit could not be created (%); not created', SQLERRM;
        END;
    END IF;
END $$;

-- The functions log in as the runtime account's IAM user, which owns nothing: it gets DML on every table the
-- migrator owns now (0001, 0002) and, through the migrator's default privileges, on every table and sequence a
-- later migration creates. schema_migrations stays the migrator's alone. Cloud SQL makes each IAM service
-- account user a member of cloudsqliamserviceaccount and names it after the account's email; the runtime
-- account is "<name>-runtime@<project>.iam" (infra/terraform/iam.tf; tests/infra holds the two together).
-- No such role where cloudsqliamserviceaccount does not exist; and where migrations still run as the runtime
-- user itself (it already owns the tables) there is nothing to grant.
DO $$
DECLARE
    runtime_user text;
    granted boolean := false;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cloudsqliamserviceaccount') THEN
        RETURN;
    END IF;
    FOR runtime_user IN
        SELECT r.rolname FROM pg_roles r
        WHERE r.rolname LIKE '%-runtime@%.iam'
          AND pg_has_role(r.oid, 'cloudsqliamserviceaccount', 'MEMBER')
          AND r.rolname <> current_user
    LOOP
        EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', runtime_user);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO %I', runtime_user);
        EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO %I', runtime_user);
        EXECUTE format('REVOKE ALL ON TABLE schema_migrations FROM %I', runtime_user);
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I',
                       runtime_user);
        EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO %I',
                       runtime_user);
        granted := true;
    END LOOP;
    IF NOT granted AND current_user NOT LIKE '%-runtime@%.iam' THEN
        RAISE EXCEPTION 'no runtime IAM database user (NAME-runtime@PROJECT.iam) on this instance: %',
            'apply the Terraform first';
    END IF;
END $$;
