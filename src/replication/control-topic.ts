/**
 * The control topic on a primary cluster: `crr-control.internal`, where another region's crr asks
 * the primary's own daemon for a backup (a reseed's backup request). The DR side's mirror source
 * principal may WRITE, READ and DESCRIBE it; the primary's crr principal has ALL on it
 * (src/acls/plan.ts). Its `.internal` suffix keeps it out of every flow (MM2's default topic
 * exclude `.*[-.]internal`).
 */
export const CONTROL_TOPIC = 'crr-control.internal';
