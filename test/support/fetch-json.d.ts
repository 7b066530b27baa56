// Test code reads JSON bodies of many shapes; typing each one would add noise, not safety.
/* eslint-disable @typescript-eslint/no-explicit-any */
export {};
declare global {
  interface Response {
    json(): Promise<any>;
  }
}
