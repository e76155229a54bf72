/** @type {import('tailwindcss').Config} */
module.exports = {
  content: ["./views/**/*.templ", "./views/**/*.go", "./static/js/app.js"],
  theme: { extend: {} },
  plugins: [require("@tailwindcss/forms")({ strategy: "class" })],
};
