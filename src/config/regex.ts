import { z } from 'zod';

/** A config string that must compile as a JavaScript regular expression (topic and group filters). */
export const RegexSchema = z.string().refine(
  (s) => {
    try {
      new RegExp(s);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'expected a valid regular expression' },
);
