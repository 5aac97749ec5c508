import { DateTime } from "luxon";
import { describe, expect, it } from "vitest";
import { ZonedTime } from "../src/index.js";

describe("ZonedTime", () => {
  it("writes a whole-minute offset, consistent with the local time, for zones whose offset had seconds (Africa/Monrovia, -00:44:30 until 1972)", () => {
    const ms = Date.UTC(1971, 5, 1, 12);
    const text = new ZonedTime("Africa/Monrovia").iso(ms);
    expect(text).toMatch(/^1971-06-01T11:1\d:\d\d\.\d{3}-00:4\d$/);
    // Whatever the rounding, the text names the same instant.
    expect(DateTime.fromISO(text).toMillis()).toBe(ms);
  });

  it("changes offset at a transition that is not on a UTC quarter hour (St John's, 00:01 local, 2010-03-14)", () => {
    const t = new ZonedTime("America/St_Johns");
    expect(t.iso(Date.UTC(2010, 2, 14, 3, 30))).toBe("2010-03-14T00:00:00.000-03:30");
    expect(t.iso(Date.UTC(2010, 2, 14, 3, 40))).toBe("2010-03-14T01:10:00.000-02:30");
    expect(t.wallClock(Date.UTC(2010, 2, 14, 3, 40)).toISOString()).toBe("2010-03-14T01:10:00.000Z");
  });

  it("agrees with Luxon minute by minute around every transition of a few zones, 2000–2030", () => {
    const DAY = 86_400_000;
    for (const zone of ["America/St_Johns", "America/Goose_Bay", "Asia/Gaza", "Antarctica/Casey", "Australia/Lord_Howe", "Europe/Paris"]) {
      const t = new ZonedTime(zone);
      const offsetAt = (ms: number) => DateTime.fromMillis(ms, { zone }).offset;
      for (let day = Date.UTC(2000, 0, 1); day < Date.UTC(2030, 0, 1); day += DAY) {
        if (offsetAt(day) === offsetAt(day + DAY)) continue;
        // The change's minute, found by halving, and every minute 20 either side of it.
        let [low, high] = [day, day + DAY];
        while (high - low > 60_000) {
          const mid = low + Math.floor((high - low) / 120_000) * 60_000;
          if (offsetAt(mid) === offsetAt(low)) low = mid;
          else high = mid;
        }
        for (let m = low - 20 * 60_000; m <= low + 20 * 60_000; m += 60_000) {
          expect(t.iso(m), `${zone} ${new Date(m).toISOString()}`).toBe(DateTime.fromMillis(m, { zone }).toISO());
        }
      }
    }
  });
});
