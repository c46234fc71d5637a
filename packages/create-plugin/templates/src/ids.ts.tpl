/** The names this plugin registers under: the vendor id (a host profile's `vendor`) and its page-table format. */
export const VENDOR_ID = '__ID__';
export const VENDOR_NAME = '__NAME__';
export const FORMAT_ID = '__ID__-pt';
