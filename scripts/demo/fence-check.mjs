// Shows the write fence of the DR store: connects to PostgreSQL as the application role, reads,
// then tries to write; prints PostgreSQL's answer. Exits 0 when reads work and every write is
// refused with SQLSTATE 42501 (insufficient_privilege), 1 otherwise.
// Usage: node scripts/demo/fence-check.mjs CONNECTION_STRING_AS_APP_ROLE SCHEMA
import pg from 'pg';

const [url, schema] = process.argv.slice(2);
if (!url || !schema) {
  console.error('usage: node scripts/demo/fence-check.mjs CONNECTION_STRING SCHEMA');
  process.exit(2);
}
const db = new pg.Client({ connectionString: url });
await db.connect();
let ok = true;
try {
  const { rows } = await db.query(`SELECT count(*)::int AS n FROM "${schema}".vertices`);
  console.log(`  read as ${db.user}: ${rows[0].n} vertices`);
  for (const sql of [
    `INSERT INTO "${schema}".vertices (type, id, attributes) VALUES ('City', 'intruder', '{}')`,
    `UPDATE "${schema}".vertices SET attributes = '{}' WHERE type = 'Country'`,
    `DELETE FROM "${schema}".edges`,
    `CREATE TABLE "${schema}".intruder (x int)`,
  ]) {
    try {
      await db.query(sql);
      console.log(`  ${sql.split(' ').slice(0, 3).join(' ')} ...: ACCEPTED (the fence is not working)`);
      ok = false;
    } catch (err) {
      const refused = err.code === '42501';
      ok &&= refused;
      console.log(`  ${sql.split(' ').slice(0, 3).join(' ')} ...: refused, ${err.code} ${err.message}`);
    }
  }
} finally {
  await db.end();
}
process.exit(ok ? 0 : 1);
