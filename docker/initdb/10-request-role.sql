-- The role tenantry's requests log in as (DATABASE_URL in docker-compose.yml):
-- NOINHERIT, owning nothing, so outside a scope it holds no tenant's
-- privileges (SECURITY.md). `tenantry migrate` grants it the rest.
-- The image runs this once, when it initialises an empty volume.
CREATE ROLE tenantry_app LOGIN NOINHERIT PASSWORD 'tenantry_app';
