/**
 * Build the pretraining corpus in `static/corpus/`:
 *
 *   1. our own seeded generator of short English lines (reviews that are
 *      clearly positive, clearly negative or mixed; story openings; polite and
 *      rude requests), from the word lists and templates below (ours, MIT);
 *   2. WordNet 3.0 example sentences (the double-quoted parts of the glosses in
 *      Debian's `wordnet-base` data.* files; WordNet licence, see
 *      THIRD_PARTY_NOTICES.md).
 *
 * One document per line (they are joined with `<|endoftext|>` at training
 * time). The lines are shuffled with a fixed seed and split 95/5 into
 * `train.txt` and `val.txt`. Everything is deterministic: running the script
 * again gives byte-identical files.
 *
 *   npx tsx scripts/make-corpus.ts [--wordnet /usr/share/wordnet] [--lines 150000] [--wordnet-lines 5000]
 *     [--out static/corpus]
 *   npx tsx scripts/make-corpus.ts --entropy [--lines 150000]
 *
 * `--entropy` writes nothing; it prints how many nats per token the generated lines carry by
 * construction: each line's generator path costs −log P (log n for a pick from n words, −log p
 * for a coin of probability p, …), summed and divided by the line's tokens under the bundled
 * tokenizer (plus one <|endoftext|>). That is an upper bound on the generated lines' entropy
 * rate (different paths can give the same line), so roughly the lowest loss a model can reach
 * on them.
 *
 * Review words are chosen from the AFINN-165 lexicon (Nielsen 2011) where we
 * can, so that a scripted sentiment labeller built on AFINN scores positive
 * reviews above zero and negative ones below zero.
 */
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OUT_DIR = resolve(ROOT, arg('--out', 'static/corpus'));
const SEED = 20240611;
const VAL_FRACTION = 0.05;

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : dflt;
}
const WORDNET_DIR = arg('--wordnet', '/usr/share/wordnet');
const GENERATED_LINES = Number(arg('--lines', '150000'));
/**
 * How many WordNet sentences to keep (a seeded sample). WordNet's free English is far harder for
 * a ~1M-parameter model than our generated lines; a small share teaches it general English
 * without dominating the loss (with all 34k sentences the validation loss stays above 2 nats/token).
 */
const WORDNET_LINES = Number(arg('--wordnet-lines', '5000'));

// ---------------------------------------------------------------------------
// Seeded PRNG (mulberry32, public domain, Tommy Ettinger).

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rand = mulberry32(SEED);
/** −log P of the current line's generator path so far (for `--entropy`; see the header). */
let pathNll = 0;
const pick = <T>(xs: readonly T[]): T => {
  pathNll += Math.log(xs.length);
  return xs[Math.floor(rand() * xs.length)];
};
const chance = (p: number): boolean => {
  const c = rand() < p;
  pathNll -= Math.log(c ? p : 1 - p);
  return c;
};

function shuffle<T>(xs: T[], r: () => number): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
}

// ---------------------------------------------------------------------------
// Word lists (ours).

type Lists = Record<string, readonly string[]>;

/** Shared sentiment words; almost all are in AFINN-165 with the right sign. */
const SHARED: Lists = {
  pos: [
    'wonderful',
    'great',
    'excellent',
    'amazing',
    'fantastic',
    'superb',
    'brilliant',
    'lovely',
    'delightful',
    'beautiful',
    'awesome',
    'perfect',
    'charming',
    'pleasant',
    'impressive',
    'outstanding',
    'fun',
    'good',
    'nice',
    'stunning',
    'enjoyable',
    'fabulous',
    'terrific',
    'marvelous',
    'splendid',
    'cool',
    'sweet',
  ],
  neg: [
    'awful',
    'terrible',
    'boring',
    'bad',
    'horrible',
    'poor',
    'disappointing',
    'dull',
    'ugly',
    'stupid',
    'useless',
    'annoying',
    'disgusting',
    'mediocre',
    'lame',
    'pathetic',
    'ridiculous',
    'tedious',
    'painful',
    'dreadful',
    'miserable',
    'lousy',
    'worthless',
    'sad',
    'weak',
    'messy',
  ],
  posVerb: ['loved', 'enjoyed', 'liked', 'adored', 'appreciated', 'admired'],
  negVerb: ['hated', 'disliked', 'regretted', 'despised'],
  posIntens: ['really', 'truly', 'absolutely', 'simply', 'so', 'very', 'incredibly', 'genuinely'],
  negIntens: ['really', 'truly', 'absolutely', 'simply', 'so', 'very', 'completely', 'utterly'],
  posFeel: ['happy', 'glad', 'delighted', 'thrilled', 'excited', 'pleased', 'impressed'],
  negFeel: ['disappointed', 'angry', 'upset', 'annoyed', 'frustrated', 'unhappy', 'sad'],
  who: [
    'my wife',
    'my husband',
    'my kids',
    'my friends',
    'my family',
    'my parents',
    'my sister',
    'my brother',
    'my partner',
    'my best friend',
    'my grandmother',
    'my roommate',
    'my coworkers',
    'my son',
    'my daughter',
  ],
  when: [
    'last night',
    'last week',
    'yesterday',
    'on Saturday',
    'over the weekend',
    'on Friday evening',
    'last month',
    'this morning',
    'on my birthday',
    'during the holidays',
  ],
  posMore: [
    'I would recommend it to anyone.',
    'I will definitely come back for more.',
    'Highly recommended.',
    'Five stars from me.',
    'It made my day.',
    'I cannot wait to try it again.',
    'Worth every penny.',
    'I would happily do it all again.',
    'What a great experience.',
    'Everyone should try it.',
    'I am so glad we went.',
    'It was the best part of my week.',
    'Thank you for such a lovely time.',
    'We left with big smiles.',
  ],
  negMore: [
    'Stay away from it.',
    'What a waste of money.',
    'Never again.',
    'One star, and that is too much.',
    'I want my money back.',
    'Avoid it if you can.',
    'It was a total disaster.',
    'I regret every minute of it.',
    'Save your money.',
    'What a waste of time.',
    'I am still angry about it.',
    'It was the worst part of my week.',
    'Do not make the same mistake I did.',
    'We left feeling cheated.',
  ],
  mixMore: [
    'Overall, it was just okay.',
    'I have mixed feelings about it.',
    'It was fine, I suppose.',
    'Some parts worked and some did not.',
    'Maybe I will give it another chance.',
    'It was neither great nor awful.',
    'Three stars.',
    'Not sure I would go back.',
    'It had its moments.',
    'Your mileage may vary.',
  ],
};

interface Domain {
  name: string;
  /** The reviewed thing, with "the" or "this" in front of it. */
  thing: readonly string[];
  /** Parts of it that can be praised or blamed. */
  aspect: readonly string[];
  /** What one does with it, past tense: "watched", "ate". */
  did: readonly string[];
  /** Openers for the whole line ("The movie was", "I loved"). */
  extra: Lists;
}

const DOMAINS: Domain[] = [
  {
    name: 'movie',
    thing: ['movie', 'film', 'show', 'documentary', 'sequel', 'series', 'cartoon', 'comedy', 'thriller', 'musical'],
    aspect: [
      'acting',
      'plot',
      'music',
      'soundtrack',
      'ending',
      'story',
      'dialogue',
      'cast',
      'script',
      'camera work',
      'lead actor',
      'villain',
      'special effects',
      'costumes',
      'opening scene',
      'pacing',
      'humor',
      'score',
    ],
    did: ['watched', 'saw'],
    extra: { place: ['the cinema', 'the theater', 'home', 'the festival'] },
  },
  {
    name: 'book',
    thing: ['book', 'novel', 'story', 'memoir', 'biography', 'cookbook', 'poem', 'mystery', 'series', 'comic'],
    aspect: [
      'writing',
      'plot',
      'characters',
      'ending',
      'story',
      'dialogue',
      'main character',
      'prose',
      'first chapter',
      'cover',
      'style',
      'pacing',
      'world building',
      'last chapter',
      'illustrations',
    ],
    did: ['read', 'finished'],
    extra: { place: ['the train', 'the beach', 'bed', 'the library'] },
  },
  {
    name: 'restaurant',
    thing: [
      'restaurant',
      'cafe',
      'food',
      'dinner',
      'meal',
      'pizza',
      'soup',
      'bakery',
      'burger',
      'pasta',
      'lunch',
      'menu',
    ],
    aspect: [
      'food',
      'service',
      'staff',
      'waiter',
      'dessert',
      'coffee',
      'bread',
      'pasta',
      'soup',
      'salad',
      'music',
      'decor',
      'view',
      'wine',
      'portions',
      'chef',
      'steak',
      'sauce',
    ],
    did: ['ate', 'had dinner', 'had lunch'],
    extra: { place: ['downtown', 'near the station', 'by the sea', 'in town'] },
  },
  {
    name: 'product',
    thing: [
      'product',
      'phone',
      'laptop',
      'blender',
      'vacuum',
      'camera',
      'jacket',
      'speaker',
      'lamp',
      'chair',
      'backpack',
      'watch',
      'kettle',
      'printer',
      'keyboard',
      'tent',
    ],
    aspect: [
      'battery',
      'design',
      'screen',
      'sound',
      'quality',
      'price',
      'packaging',
      'delivery',
      'color',
      'handle',
      'material',
      'customer service',
      'instructions',
      'size',
      'finish',
      'buttons',
    ],
    did: ['bought', 'ordered', 'used'],
    extra: { place: ['online', 'at the mall', 'from the shop', 'on sale'] },
  },
];

// Templates. {x} takes a word from list x; {x2} takes a different word from
// the same list. {Thing} etc. capitalises. Domain lists: thing, aspect, did, place.

const POS_TEMPLATES = [
  'The {thing} was {pos} and the {aspect} was {pos2}.',
  'This {thing} is {posIntens} {pos}.',
  'I {posVerb} this {thing}.',
  'I {posVerb} the {aspect}. It was {pos}.',
  'The {aspect} was {posIntens} {pos}, and the {aspect2} was {pos2} too.',
  'What a {pos} {thing}! The {aspect} was {pos2}.',
  'I {posVerb} every minute of this {thing}.',
  'The {thing} was {pos}. I was so {posFeel}.',
  'We {did} it {when} and we {posVerb} it.',
  'This is the best {thing} I have ever seen.',
  'Such a {pos} {thing}, and the {aspect} was {pos2}.',
  'The {aspect} is {pos} and the {aspect2} is {pos2}.',
  '{Who} {posVerb} the {thing}, and so did I.',
  'I was {posFeel} with the {thing}. The {aspect} was {pos}.',
  'A {pos} {thing}. Even the {aspect} was {pos2}.',
  'The {thing} was {posIntens} {pos}. I {posVerb} it.',
  'Everything about this {thing} was {pos}.',
  'My favorite part was the {aspect}. It was {pos}.',
  'I {did} it {when} with {who}, and it was {pos}.',
  'The {aspect} made me smile. What a {pos} {thing}.',
  'This {thing} was a {pos} surprise.',
  'I {posVerb} it so much. The {aspect} was {pos} and the {aspect2} was {pos2}.',
  'The {thing} is {pos}, and I would {recommend} it.',
  'It was a {pos} {thing}. The {aspect} was perfect.',
  'I am so {posFeel} I {did} it. The {aspect} was {pos}.',
  'The {thing} was {pos} from start to finish.',
  'Honestly, the {aspect} was {pos}. I {posVerb} it.',
  'The {aspect} was the best I have ever seen.',
  'This {thing} is a real gem. The {aspect} was {pos}.',
  'The {thing} was {pos}, the {aspect} was {pos2}, and the {aspect2} was {pos3}.',
  'I had a {pos} time. The {aspect} was {posIntens} {pos2}.',
  'The {aspect} was {pos} and {pos2}.',
  'Wow, the {aspect} was {pos}! I {posVerb} this {thing}.',
  '{Who} and I {posVerb} the {aspect}.',
];

const NEG_TEMPLATES = [
  'The {thing} was {neg} and the {aspect} was {neg2}.',
  'This {thing} is {negIntens} {neg}.',
  'I {negVerb} this {thing}.',
  'I {negVerb} the {aspect}. It was {neg}.',
  'The {aspect} was {negIntens} {neg}, and the {aspect2} was {neg2} too.',
  'What a {neg} {thing}! The {aspect} was {neg2}.',
  'I {negVerb} every minute of this {thing}.',
  'The {thing} was {neg}. I was so {negFeel}.',
  'We {did} it {when} and we {negVerb} it.',
  'This is the worst {thing} I have ever seen.',
  'Such a {neg} {thing}, and the {aspect} was {neg2}.',
  'The {aspect} is {neg} and the {aspect2} is {neg2}.',
  '{Who} {negVerb} the {thing}, and so did I.',
  'I was {negFeel} with the {thing}. The {aspect} was {neg}.',
  'A {neg} {thing}. Even the {aspect} was {neg2}.',
  'The {thing} was {negIntens} {neg}. I {negVerb} it.',
  'Everything about this {thing} was {neg}.',
  'The worst part was the {aspect}. It was {neg}.',
  'I {did} it {when} with {who}, and it was {neg}.',
  'The {aspect} made me angry. What a {neg} {thing}.',
  'This {thing} was a {neg} waste of time.',
  'I {negVerb} it so much. The {aspect} was {neg} and the {aspect2} was {neg2}.',
  'The {thing} is {neg}, and everyone should avoid it.',
  'It was a {neg} {thing}. The {aspect} was a mess.',
  'I am so {negFeel} I {did} it. The {aspect} was {neg}.',
  'The {thing} was {neg} from start to finish.',
  'Honestly, the {aspect} was {neg}. I {negVerb} it.',
  'The {aspect} was the worst I have ever seen.',
  'This {thing} is a total failure. The {aspect} was {neg}.',
  'The {thing} was {neg}, the {aspect} was {neg2}, and the {aspect2} was {neg3}.',
  'I had a {neg} time. The {aspect} was {negIntens} {neg2}.',
  'The {aspect} was {neg} and {neg2}.',
  'Ugh, the {aspect} was {neg}! I {negVerb} this {thing}.',
  '{Who} and I {negVerb} the {aspect}.',
];

const MIX_TEMPLATES = [
  'The {aspect} was {neg}, but the {aspect2} was {pos}.',
  'The {aspect} was {pos}, but the {aspect2} was {neg}.',
  'I {posVerb} the {aspect}, but the {aspect2} was {neg}.',
  'I {negVerb} the {aspect}, but the {aspect2} was {pos}.',
  'The {thing} was {pos} at first, but the {aspect} was {neg}.',
  'The {thing} started {neg}, but the {aspect} was {pos}.',
  'The {aspect} was {posIntens} {pos}, although the {aspect2} was {neg}.',
  'Although the {aspect} was {neg}, the {aspect2} was {pos}.',
  'Although the {aspect} was {pos}, the {aspect2} was {neg}.',
  '{Pos} {aspect}, {neg} {aspect2}.',
  'The {aspect} was {pos}. Sadly, the {aspect2} was {neg}.',
  'The {aspect} was {neg}. Still, the {aspect2} was {pos}.',
  'In this {thing}, the {aspect} is {pos} and the {aspect2} is {neg}.',
  '{Who} {posVerb} the {thing}, but I found it {neg}.',
  '{Who} {negVerb} the {thing}, but I thought it was {pos}.',
  'Good {aspect}, {neg} {aspect2}.',
  'The {aspect} was {pos}, yet the {aspect2} was {negIntens} {neg}.',
  'I wanted to love this {thing}. The {aspect} was {pos}, but the {aspect2} was {neg}.',
  'Parts of the {thing} were {pos}, and parts were {neg}.',
  'The {aspect} was {neg} and the {aspect2} was {neg2}, but the {aspect3} was {pos}.',
  'The {aspect} was {pos} and the {aspect2} was {pos2}, but the {aspect3} was {neg}.',
  'The {thing} was {pos} in places and {neg} in others.',
  'I {did} it {when}. The {aspect} was {pos}, but the {aspect2} was {neg}.',
  'On the one hand, the {aspect} was {pos}. On the other hand, the {aspect2} was {neg}.',
  'The {aspect} was {neg}, though the {aspect2} was {posIntens} {pos}.',
  'Not every part was {pos}: the {aspect} was {neg}.',
  'The {thing} looked {pos}, but the {aspect} was {neg}.',
  'The {aspect} was fine, the {aspect2} was {pos}, and the {aspect3} was {neg}.',
  'I was {posFeel} with the {aspect}, but {negFeel} with the {aspect2}.',
  'The {neg} {aspect} spoiled an otherwise {pos} {thing}.',
  'The {pos} {aspect} saved an otherwise {neg} {thing}.',
  'The {aspect} was {pos}, but the {thing} as a whole was {neg}.',
];

// ---------------------------------------------------------------------------
// Stories.

interface Character {
  who: string;
  pron: 'she' | 'he';
}
const CHARACTERS: Character[] = [
  ...[
    'a little fox',
    'an old owl',
    'a curious rabbit',
    'a tiny mouse',
    'a clever crow',
    'a young bear',
    'a gentle deer',
    'a small turtle',
    'a brave squirrel',
    'a lonely wolf',
    'a friendly dragon',
    'a sleepy cat',
    'a shy hedgehog',
    'a proud lion',
    'a playful otter',
    'a wise tortoise',
    'a hungry goose',
    'a lost duckling',
  ].map((who, i): Character => ({ who, pron: i % 2 === 0 ? 'she' : 'he' })),
  ...[
    'a young princess',
    'a poor girl',
    'a clever queen',
    'an old woman',
    'a brave girl',
    'a kind witch',
    'a young shepherdess',
    'a little girl',
    'a famous singer',
    'a sailor girl',
  ].map((who): Character => ({ who, pron: 'she' })),
  ...[
    'a young prince',
    'a poor farmer',
    'an old fisherman',
    'a brave knight',
    'a little boy',
    'a kind giant',
    'a young baker',
    'a clever tailor',
    'an old king',
    'a wandering musician',
    'a lonely robot',
  ].map((who): Character => ({ who, pron: 'he' })),
];

const STORY: Lists = {
  place: [
    'near the river',
    'in a small village',
    'at the edge of the forest',
    'in a tall tower',
    'by the sea',
    'on a quiet hill',
    'in a busy city',
    'under an old oak tree',
    'in a cottage by the lake',
    'deep in the woods',
    'on a faraway island',
    'in the mountains',
    'behind the old mill',
    'in a castle made of glass',
    'beside a wide meadow',
  ],
  land: [
    'a faraway kingdom',
    'a land of ice and snow',
    'a green valley',
    'a sleepy town',
    'a kingdom by the sea',
    'a forest full of secrets',
    'a desert of golden sand',
    'a village between two hills',
  ],
  love: [
    'the stars',
    'music',
    'long walks',
    'stories',
    'the rain',
    'flowers',
    'cooking',
    'the sea',
    'adventure',
    'painting',
    'riddles',
    'the moon',
    'dancing',
  ],
  daily: [
    'went to the market',
    'sang to the birds',
    'watered the garden',
    'looked at the sky',
    'walked along the shore',
    'gathered berries',
    'read old books',
    'baked fresh bread',
    'counted the clouds',
    'fed the ducks',
    'fixed old clocks',
  ],
  found: [
    'a golden key',
    'a strange map',
    'a tiny door',
    'a talking frog',
    'a shining stone',
    'a letter in a bottle',
    'an old lamp',
    'a magic seed',
    'a hidden path',
    'a broken compass',
    'a silver feather',
    'a sleeping dragon',
  ],
  wish: [
    'see the ocean',
    'fly like a bird',
    'find a true friend',
    'learn magic',
    'visit the city',
    'climb the highest mountain',
    'find the lost treasure',
    'hear the stars sing',
    'become a great cook',
    'go home again',
  ],
  weather: [
    'a cold winter night',
    'a bright summer morning',
    'a rainy autumn day',
    'a windy spring evening',
    'a foggy dawn',
    'a quiet snowy afternoon',
  ],
  feel: ['happy', 'curious', 'lonely', 'brave', 'sad', 'hopeful', 'excited', 'afraid', 'tired'],
  stranger: [
    'a tall stranger',
    'an old traveler',
    'a small bird',
    'a talking cat',
    'a little girl',
    'a mysterious woman',
    'a kind old man',
    'a lost puppy',
    'a singing fish',
  ],
};

const STORY_OPENINGS = [
  'Once upon a time, {char} lived {place}.',
  'Once upon a time, there was {char} who loved {love}.',
  'Once upon a time, in {land}, there lived {char}.',
  'Once upon a time, {char} wanted to {wish}.',
  'Once upon a time, {char} found {found}.',
  'Once upon a time, {char} and {char2} lived {place}.',
  'Once upon a time, on {weather}, {char} knocked on a door.',
  'Once upon a time, {char} set out to {wish}.',
  'Once upon a time, {char} lived alone {place}.',
  'Once upon a time, there was {char} who had never seen {love}.',
  'Once upon a time, {char} made a promise to {char2}.',
  'Once upon a time, {char} could not sleep.',
  'Long ago, in {land}, there was {char} who loved {love}.',
  'Long ago, {char} lived {place}.',
  'Long, long ago, {char} dreamed of a way to {wish}.',
  'There once was {char} who lived {place}.',
  'There once was {char} who wanted to {wish}.',
  'In {land}, there lived {char} who loved {love}.',
  'It was {weather} when {char} found {found}.',
  'On {weather}, {char} left home to {wish}.',
  'Many years ago, {char} lived {place}.',
  'Far away, {place}, lived {char}.',
  'One day, {char} found {found} {place}.',
  'Every morning, {char} {daily}.',
  'Not long ago, {char} met {stranger} {place}.',
  'Once upon a time, {char} met {stranger} {place}.',
  'Once upon a time, {char} was very {feel}.',
  'Once upon a time, {char} heard a strange sound {place}.',
  'In a little house {place}, there lived {char}.',
  'Once upon a time, {char} had a secret.',
  'Once upon a time, {char} lost {found}.',
  'Once upon a time, there was {char} who {daily} every day.',
];

const STORY_NEXT = [
  'Every morning, {pron} {daily}.',
  'One day, {pron} found {found}.',
  '{Pron} wanted to {wish} more than anything.',
  '{Pron} loved {love} more than anything in the world.',
  'One day, {pron} met {stranger}.',
  '{Pron} felt {feel}, but {pron} did not give up.',
  'Nobody knew that {pron} had {found}.',
  'Then, on {weather}, everything changed.',
  'But {pron} was {feel} and wanted to {wish}.',
  'So {pron} packed a small bag and left home.',
  '"Who are you?" asked {stranger}.',
  '{Pron} looked around and smiled.',
  'Soon {pron} became friends with {char2}.',
  'The next day, {pron} {daily} again.',
  'That night, {pron} dreamed of {love}.',
  'At last, {pron} found a way to {wish}.',
];

// ---------------------------------------------------------------------------
// Requests.

/** [base form, past participle] */
const TASKS: [string, string][] = [
  ['send me the report', 'sent me the report'],
  ['call me back', 'called me back'],
  ['close the window', 'closed the window'],
  ['help me with this box', 'helped me with this box'],
  ['check my email', 'checked my email'],
  ['fix the printer', 'fixed the printer'],
  ['answer the phone', 'answered the phone'],
  ['clean the kitchen', 'cleaned the kitchen'],
  ['book a table for two', 'booked a table for two'],
  ['turn down the music', 'turned down the music'],
  ['pass me the salt', 'passed me the salt'],
  ['review my draft', 'reviewed my draft'],
  ['pick up the kids from school', 'picked up the kids from school'],
  ['update the website', 'updated the website'],
  ['water the plants', 'watered the plants'],
  ['finish the slides', 'finished the slides'],
  ['move your car', 'moved your car'],
  ['sign these papers', 'signed these papers'],
  ['bring the files to my office', 'brought the files to my office'],
  ['reply to the customer', 'replied to the customer'],
  ['take out the trash', 'taken out the trash'],
  ['lock the door', 'locked the door'],
  ['share the notes from the meeting', 'shared the notes from the meeting'],
  ['order more paper', 'ordered more paper'],
  ['walk the dog', 'walked the dog'],
  ['return my book', 'returned my book'],
  ['set up the projector', 'set up the projector'],
  ['look at my code', 'looked at my code'],
  ['write the summary', 'written the summary'],
  ['check the numbers again', 'checked the numbers again'],
];

const REQ: Lists = {
  deadline: [
    'by Friday',
    'by tomorrow morning',
    'by the end of the day',
    'by noon',
    'before the meeting',
    'by Monday',
    'this afternoon',
    'tonight',
    'before lunch',
    'next week',
  ],
  name: [
    'Anna',
    'Tom',
    'Maria',
    'David',
    'Sara',
    'James',
    'Lena',
    'Omar',
    'Grace',
    'Peter',
    'Nina',
    'Leo',
    'Emma',
    'Sam',
  ],
  thanks: [
    'Thank you so much.',
    'Thanks a lot.',
    'Thank you in advance.',
    'I really appreciate it.',
    'Thanks so much for your help.',
    'Many thanks.',
    'That would be wonderful.',
    'You are a great help.',
    'I would be very grateful.',
    'Thank you, I owe you one.',
  ],
  rudeEnd: [
    'Hurry up.',
    'Now.',
    'And be quick about it.',
    'I am not asking again.',
    'Do not make me wait.',
    'Move it.',
    'Stop wasting my time.',
    'This is ridiculous.',
    'Just do it.',
    'No excuses.',
    'I am sick of waiting.',
    'Get it done.',
  ],
  soft: [
    'if you have a moment',
    'when you get a chance',
    'if it is not too much trouble',
    'whenever you can',
    'if you can',
  ],
};

const POLITE_TEMPLATES = [
  'Could you please {task} {deadline}? {thanks}',
  'Could you please {task}? {thanks}',
  'Could you please {task} {soft}? {thanks}',
  'Please {task} {deadline}. {thanks}',
  'Please {task} {soft}. {thanks}',
  'Please could you {task}? {thanks}',
  'Can you {task} {deadline}, please? {thanks}',
  'Can you please {task}? {thanks}',
  'Can you {task} {soft}? {thanks}',
  'Would you mind if I asked you to {task}? {thanks}',
  'Would you be able to {task} {deadline}? {thanks}',
  'Would you please {task}? {thanks}',
  'Hi {name}, could you please {task} {deadline}? {thanks}',
  'Hi {name}, would you mind helping me? Could you {task}? {thanks}',
  'Dear {name}, could you please {task} {deadline}? {thanks}',
  'Sorry to bother you, but could you {task}? {thanks}',
  'I hope you are well. Could you please {task} {deadline}? {thanks}',
  'If it is not too much trouble, could you {task}? {thanks}',
  'When you have a moment, please {task}. {thanks}',
  'I would be grateful if you could {task} {deadline}. {thanks}',
  'May I ask you to {task}? {thanks}',
  'Excuse me, could you please {task}? {thanks}',
  'Please, {name}, {task} {soft}. {thanks}',
  'Could I ask a small favor? Please {task} {deadline}. {thanks}',
  'Do you think you could {task} {deadline}? {thanks}',
  'Good morning, {name}. Could you please {task}? {thanks}',
  'Can you help me? I need you to {task} {deadline}, please. {thanks}',
  'Thank you for your help earlier. Could you also {task}? {thanks}',
  'Please {task} and let me know. {thanks}',
  'Could you kindly {task} {deadline}? {thanks}',
  'Whenever you are free, could you {task}? {thanks}',
  'Would it be possible to {task} {deadline}? {thanks}',
];

const RUDE_TEMPLATES = [
  '{Task} now. {rudeEnd}',
  '{Task} {deadline}. {rudeEnd}',
  'Just {task} already. {rudeEnd}',
  'I told you to {task}. Do it now.',
  'Why have you not {taskPast} yet? {rudeEnd}',
  '{name}, {task}. {rudeEnd}',
  'Hey, {task}. {rudeEnd}',
  'You still have not {taskPast}? {rudeEnd}',
  'Can you just {task} for once? {rudeEnd}',
  'How many times do I have to tell you to {task}? {rudeEnd}',
  'Stop whining and {task}. {rudeEnd}',
  'Go {task}. {rudeEnd}',
  'I do not care how, just {task}. {rudeEnd}',
  'Are you deaf? I said {task}. {rudeEnd}',
  '{Task}, and do not argue with me. {rudeEnd}',
  'Why is it so hard to {task}? {rudeEnd}',
  'Listen, {name}. {Task} {deadline}. {rudeEnd}',
  'You had one job: {task}. {rudeEnd}',
  'Give me the report now. {rudeEnd}',
  'Do it yourself? No. You {task}. {rudeEnd}',
  'I need you to {task} right now. {rudeEnd}',
  'Quit stalling and {task}. {rudeEnd}',
  'If you do not {task} {deadline}, you are in trouble. {rudeEnd}',
  'What is wrong with you? {Task}. {rudeEnd}',
  'Seriously, {task}. {rudeEnd}',
  'Do not ask questions. {Task}. {rudeEnd}',
  'I am waiting. {Task}. {rudeEnd}',
  'Ugh. {Task} {deadline}. {rudeEnd}',
  'You were supposed to {task} {deadline}. {rudeEnd}',
  'Enough excuses. {Task}. {rudeEnd}',
  'Just {task}. Nobody cares what you think.',
  '{Task} or do not bother coming back.',
];

// ---------------------------------------------------------------------------
// Template filling.

const cap = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/**
 * Fill `{name}` / `{name2}` / `{Name}` slots from `lists`. Slots with the same
 * base name get different words within one line.
 */
function fill(template: string, lists: Lists): string {
  const used = new Map<string, Set<string>>();
  const chosen = new Map<string, string>();
  const out = template.replace(/\{([A-Za-z]+?)(\d?)\}/g, (_, rawName: string, idx: string) => {
    const name = rawName.charAt(0).toLowerCase() + rawName.slice(1);
    const key = name + idx;
    let word = chosen.get(key);
    if (word === undefined) {
      const list = lists[name];
      if (!list) throw new Error(`template ${JSON.stringify(template)}: no word list "${name}"`);
      const u = used.get(name) ?? new Set<string>();
      const free = list.filter((w) => !u.has(w));
      word = pick(free.length ? free : list);
      u.add(word);
      used.set(name, u);
      chosen.set(key, word);
    }
    return rawName.charAt(0) === rawName.charAt(0).toUpperCase() ? cap(word) : word;
  });
  return fixAgreement(fixArticles(out));
}

/** Aspects that take "were"/"are". */
const PLURALS = ['characters', 'costumes', 'special effects', 'illustrations', 'portions', 'instructions', 'buttons'];
const PLURAL_RE = new RegExp(`\\b(${PLURALS.join('|')}) (was|is)\\b`, 'g');

/** "the buttons was" → "the buttons were". */
function fixAgreement(s: string): string {
  return s.replace(PLURAL_RE, (_, p: string, v: string) => `${p} ${v === 'was' ? 'were' : 'are'}`);
}

/** "a awful" → "an awful". Our word lists avoid words like "hour" and "user". */
function fixArticles(s: string): string {
  return s.replace(/\b([Aa]) (?=[aeiouAEIOU])/g, (_, a: string) => (a === 'A' ? 'An ' : 'an '));
}

function review(kind: 'pos' | 'neg' | 'mix'): string {
  const d = pick(DOMAINS);
  const lists: Lists = {
    ...SHARED,
    ...d.extra,
    thing: [pick(d.thing)], // one thing per review, across its sentences
    aspect: d.aspect,
    did: d.did,
    recommend: ['recommend', 'suggest'],
  };
  const templates = kind === 'pos' ? POS_TEMPLATES : kind === 'neg' ? NEG_TEMPLATES : MIX_TEMPLATES;
  const parts = [fill(pick(templates), lists)];
  if (kind !== 'mix' && chance(0.35)) parts.push(fill(pick(templates), lists));
  const more = kind === 'pos' ? SHARED.posMore : kind === 'neg' ? SHARED.negMore : SHARED.mixMore;
  if (chance(0.4)) parts.push(pick(more));
  return parts.join(' ');
}

function story(): string {
  const c = pick(CHARACTERS);
  const others = CHARACTERS.filter((x) => x !== c).map((x) => x.who);
  const lists: Lists = {
    ...STORY,
    char: [c.who],
    char2: others,
    pron: [c.pron],
  };
  // {char2} is its own list here, so give it a distinct name for `fill`.
  const fillStory = (t: string): string => fill(t.replace(/\{char2\}/g, '{other}'), { ...lists, other: others });
  const parts = [fillStory(pick(STORY_OPENINGS))];
  const n = rand() < 0.45 ? 0 : rand() < 0.6 ? 1 : 2;
  // The path's cost: this n, then the first n of a shuffle (the rest of the shuffle is not used).
  pathNll -= Math.log(n === 0 ? 0.45 : n === 1 ? 0.55 * 0.6 : 0.55 * 0.4);
  for (let i = 0; i < n; i++) pathNll += Math.log(STORY_NEXT.length - i);
  const next = shuffle(STORY_NEXT.slice(), rand);
  for (let i = 0; i < n; i++) parts.push(fillStory(next[i]));
  return parts.join(' ');
}

function request(kind: 'polite' | 'rude'): string {
  const [task, taskPast] = pick(TASKS);
  const lists: Lists = { ...REQ, task: [task], taskPast: [taskPast] };
  return fill(pick(kind === 'polite' ? POLITE_TEMPLATES : RUDE_TEMPLATES), lists);
}

const CATEGORIES: [string, number, () => string][] = [
  ['review-positive', 0.22, () => review('pos')],
  ['review-negative', 0.22, () => review('neg')],
  ['review-mixed', 0.14, () => review('mix')],
  ['story', 0.2, story],
  ['request-polite', 0.11, () => request('polite')],
  ['request-rude', 0.11, () => request('rude')],
];

function generate(n: number): { lines: string[]; perCategory: Map<string, number>; pathNlls: number[] } {
  const pathNlls: number[] = [];
  const seen = new Set<string>();
  const lines: string[] = [];
  const perCategory = new Map<string, number>();
  let tries = 0;
  while (lines.length < n && tries < n * 20) {
    tries++;
    pathNll = 0;
    let r = rand();
    let cat = CATEGORIES[CATEGORIES.length - 1];
    for (const c of CATEGORIES) {
      if (r < c[1]) {
        cat = c;
        break;
      }
      r -= c[1];
    }
    const line = cap(cat[2]());
    if (seen.has(line)) continue;
    if (!/^[\x20-\x7e]+$/.test(line)) throw new Error(`generated a non-ASCII line: ${line}`);
    seen.add(line);
    lines.push(line);
    pathNlls.push(pathNll - Math.log(cat[1]));
    perCategory.set(cat[0], (perCategory.get(cat[0]) ?? 0) + 1);
  }
  return { lines, perCategory, pathNlls };
}

// ---------------------------------------------------------------------------
// WordNet example sentences.

function wordnetSentences(dir: string): { lines: string[]; perFile: Map<string, number> } {
  const seen = new Set<string>();
  const lines: string[] = [];
  const perFile = new Map<string, number>();
  for (const pos of ['noun', 'verb', 'adj', 'adv']) {
    const file = join(dir, `data.${pos}`);
    if (!existsSync(file)) throw new Error(`${file} not found: install Debian's wordnet-base or pass --wordnet DIR`);
    let count = 0;
    for (const row of readFileSync(file, 'latin1').split('\n')) {
      if (row.startsWith('  ') || row.length === 0) continue; // licence header
      const bar = row.indexOf(' | ');
      if (bar < 0) continue;
      const gloss = row.slice(bar + 3);
      for (const m of gloss.matchAll(/"([^"]+)"/g)) {
        const s = cleanSentence(m[1]);
        if (s === null || seen.has(s)) continue;
        seen.add(s);
        lines.push(s);
        count++;
      }
    }
    perFile.set(`data.${pos}`, count);
  }
  return { lines, perFile };
}

function cleanSentence(raw: string): string | null {
  let s = raw.replace(/\s+/g, ' ').trim();
  s = s.replace(/^[-;:,.\s]+/, '').replace(/[;:,\s]+$/, '');
  if (!/^[\x20-\x7e]+$/.test(s)) return null; // ASCII only
  if (/[_{}[\]<>|\\`~@#$^*=+]|--|\.\.\.|\d{5,}/.test(s)) return null;
  const words = s.split(' ');
  if (words.length < 4 || words.length > 40) return null;
  if ((s.match(/\(/g) ?? []).length !== (s.match(/\)/g) ?? []).length) return null;
  if (!/^[A-Za-z'(]/.test(s)) return null;
  s = cap(s);
  if (!/[.!?]$/.test(s)) s += '.';
  return s;
}

// ---------------------------------------------------------------------------

/** `--entropy`: nats per token of the generated lines by construction (see the header). */
async function entropy(): Promise<void> {
  const { BpeTokenizer } = await import('../src/lib/model/tokenizer');
  const tokPath = join(ROOT, 'public/models/tiny-gpt/tokenizer.json');
  const tok = BpeTokenizer.fromJSON(JSON.parse(readFileSync(tokPath, 'utf8')));
  const gen = generate(GENERATED_LINES);
  let nll = 0;
  let tokens = 0;
  gen.lines.forEach((line, i) => {
    nll += gen.pathNlls[i];
    tokens += tok.encode(line).length + 1; // + the <|endoftext|> before the next document
  });
  console.log(
    `${gen.lines.length} generated lines: ${(nll / gen.lines.length).toFixed(2)} nats and ${(tokens / gen.lines.length).toFixed(2)} tokens per line → at most ${(nll / tokens).toFixed(3)} nats/token`,
  );
}

function main(): void {
  const gen = generate(GENERATED_LINES);
  const wn = wordnetSentences(WORDNET_DIR);
  if (wn.lines.length > WORDNET_LINES) {
    shuffle(wn.lines, mulberry32(SEED + 2));
    wn.lines.length = WORDNET_LINES;
  }

  // Tag, shuffle with a fixed seed, split.
  const all = [...gen.lines.map((l) => ['g', l] as const), ...wn.lines.map((l) => ['w', l] as const)];
  shuffle(all, mulberry32(SEED + 1));
  const nVal = Math.round(all.length * VAL_FRACTION);
  const val = all.slice(0, nVal);
  const train = all.slice(nVal);

  mkdirSync(OUT_DIR, { recursive: true });
  const text = (xs: readonly (readonly [string, string])[]): string => xs.map((x) => x[1]).join('\n') + '\n';
  const trainText = text(train);
  const valText = text(val);
  writeFileSync(join(OUT_DIR, 'train.txt'), trainText);
  writeFileSync(join(OUT_DIR, 'val.txt'), valText);

  const bytes = (xs: readonly string[]): number => xs.reduce((n, l) => n + l.length + 1, 0);
  const count = (xs: readonly (readonly [string, string])[], tag: string): number =>
    xs.filter((x) => x[0] === tag).length;
  const stats = {
    generatedLines: gen.lines.length,
    generatedBytes: bytes(gen.lines),
    wordnetLines: wn.lines.length,
    wordnetBytes: bytes(wn.lines),
    trainLines: train.length,
    trainBytes: trainText.length,
    trainGenerated: count(train, 'g'),
    trainWordnet: count(train, 'w'),
    valLines: val.length,
    valBytes: valText.length,
    valGenerated: count(val, 'g'),
    valWordnet: count(val, 'w'),
  };
  console.log(stats);
  console.log('generated per category:', Object.fromEntries(gen.perCategory));
  console.log('wordnet per file:', Object.fromEntries(wn.perFile));
  writeFileSync(join(OUT_DIR, 'README.md'), readme(stats, gen.perCategory, wn.perFile));
}

function readme(stats: Record<string, number>, perCat: Map<string, number>, perFile: Map<string, number>): string {
  const catRows = [...perCat].map(([k, v]) => `| ${k} | ${v} |`).join('\n');
  const fileRows = [...perFile].map(([k, v]) => `| ${k} | ${v} |`).join('\n');
  return `# Pretraining corpus

Written by \`scripts/make-corpus.ts\`; do not edit by hand. One document per
line; documents are joined with \`<|endoftext|>\` at training time. ASCII only.

| file | lines | bytes | generated | WordNet |
| --- | ---: | ---: | ---: | ---: |
| train.txt | ${stats.trainLines} | ${stats.trainBytes} | ${stats.trainGenerated} | ${stats.trainWordnet} |
| val.txt | ${stats.valLines} | ${stats.valBytes} | ${stats.valGenerated} | ${stats.valWordnet} |

The split is fixed: all lines are shuffled with a seeded PRNG (mulberry32,
seed ${SEED + 1}) and the first ${VAL_FRACTION * 100}% go to \`val.txt\`.

## Part 1: generated lines (${stats.generatedLines} lines, ${stats.generatedBytes} bytes)

Our own seeded generator (mulberry32, seed ${SEED}) fills templates from word
lists written for this project (all in \`scripts/make-corpus.ts\`):
reviews of movies, books, restaurants and products that are clearly positive,
clearly negative or mixed; story openings ("Once upon a time, ..."); polite and
rude requests. Sentiment words are chosen from the AFINN-165 lexicon where
possible, so a lexicon-based labeller agrees with the intended polarity.
Duplicate lines are dropped.

| category | lines |
| --- | ---: |
${catRows}

Licence: part of this project, MIT.

## Part 2: WordNet 3.0 example sentences (${stats.wordnetLines} lines, ${stats.wordnetBytes} bytes)

The double-quoted example sentences in the glosses of WordNet 3.0's
\`data.noun\`, \`data.verb\`, \`data.adj\` and \`data.adv\` (Debian package
\`wordnet-base\`, \`/usr/share/wordnet/\`), in file order, cleaned: whitespace
collapsed, non-ASCII or odd ones and ones under 4 or over 40 words skipped, first
letter capitalised, a period added if the sentence had no final punctuation,
duplicates dropped.

| file | sentences kept |
| --- | ---: |
${fileRows}

Licence: WordNet 3.0 licence (BSD-style), "WordNet 3.0 Copyright 2006 by
Princeton University. All rights reserved." The full text is in
\`THIRD_PARTY_NOTICES.md\` at the repository root.

## Regenerate

\`\`\`
npx tsx scripts/make-corpus.ts            # needs /usr/share/wordnet (apt install wordnet-base)
\`\`\`

It is deterministic: the same inputs give byte-identical output. The bundled
tokenizer was trained on the first, smaller version of this corpus (50,000
generated lines) and kept when the corpus grew, so the shipped model's ids did
not change; to retrain it on exactly that text:

\`\`\`
npx tsx scripts/make-corpus.ts --lines 50000 --out runs/corpus-50k
npx tsx scripts/train-tokenizer.ts --corpus runs/corpus-50k
\`\`\`
`;
}

if (process.argv.includes('--entropy')) await entropy();
else main();
